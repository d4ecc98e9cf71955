package policy

import (
	"time"

	"github.com/nudge/nudge"
)

// Record returns the decision as a decision-log record: Outcome, Reason,
// Message and Details (the facts used, with "until" a time.Time as the
// engine's deferral reads it). The engine fills who, where and when.
func (d *Decision) Record(policyVersion int64) *nudge.Decision {
	return &nudge.Decision{
		Outcome:       d.Outcome,
		Reason:        d.Reason,
		Message:       d.Sentence,
		Details:       d.Details(),
		PolicyVersion: policyVersion,
	}
}

// Details are the facts used, as the decision log stores them.
func (d *Decision) Details() map[string]any {
	u := &d.Used
	m := map[string]any{
		"zone":        u.Zones.Names[0],
		"zone_source": u.Zones.Source,
		"local_time":  u.LocalTime.Format(time.RFC3339),
	}
	if len(u.Zones.Names) > 1 {
		m["zones"] = u.Zones.Names
	}
	if u.Zones.Prefix != "" {
		m["phone_prefix"] = u.Zones.Prefix
	}
	if u.Zones.Region != "" {
		m["region"] = u.Zones.Region
	}
	if u.Zones.Problem != "" {
		m["zone_problem"] = u.Zones.Problem
	}
	if u.Transactional {
		m["transactional"] = true
	}
	if !d.Until.IsZero() {
		m["until"] = d.Until
	}
	if !u.Deadline.IsZero() {
		m["deadline"] = u.Deadline
	}
	if c := u.Consent; c != nil {
		m["consent"] = map[string]any{"channel": c.Channel, "purpose": c.Purpose, "status": c.Status, "source": c.Source, "updated_at": c.UpdatedAt, "entry_id": c.EntryID}
	}
	if s := u.Suppression; s != nil {
		m["suppression"] = map[string]any{"channel": s.Channel, "kind": s.Kind, "source": s.Source, "at": s.At}
	}
	if e := u.Engaged; e != nil {
		m["engaged"] = map[string]any{"event": e.Event, "at": e.At}
	}
	if p := u.Paused; p != nil {
		m["paused"] = map[string]any{"journey": p.JourneyID, "step": p.StepID, "paused_at": p.PausedAt, "sent": p.Sent, "opted_out": p.OptedOut, "rate": p.Rate, "threshold": p.Threshold}
	}
	if w := u.Window; w != nil {
		m["window"] = w.String()
	}
	if u.Region != "" {
		m["window_region"] = u.Region
	}
	if c := u.Cap; c != nil {
		m["cap"] = c.String()
		m["cap_code"] = c.Reason()
		if c.origin != "" {
			m["cap_from"] = c.origin
		}
		var counted []map[string]any
		for _, s := range u.Counted {
			counted = append(counted, map[string]any{"id": s.ID, "journey": s.Journey, "template": s.Template, "at": s.At, "in_flight": s.InFlight})
		}
		if counted != nil {
			m["counted"] = counted
		}
		if !u.FreesAt.IsZero() {
			m["frees_at"] = u.FreesAt
		}
	}
	if w := u.Winner; w != nil {
		m["winner"] = map[string]any{"journey": w.Journey, "template": w.Template, "priority": u.WinnerPriority, "at": w.At}
		m["priority"] = u.Priority
	}
	return m
}
