package engine

import (
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// Entry is a trigger that fired for a contact: what Enter decides about.
type Entry struct {
	Journey *journey.Journey
	Version int64
	Contact *nudge.Contact
	// Event is the triggering event (event triggers), nil otherwise.
	Event *nudge.Event
	// Reason is ReasonEnteredEvent, ReasonEnteredAttribute or ReasonEnteredDate.
	Reason string
	// Why completes the entered sentence ("on webinar.registered").
	Why string
	// Existing are the contact's enrollments in this journey, live or ended.
	Existing []*nudge.Enrollment
}

// Enter decides whether the contact enters the journey at now and, if so,
// runs the new enrollment's first steps. It returns nil when nothing is to
// be recorded, else a transition with a new enrollment (entered) or only a
// not_entered decision (Enrollment nil).
func Enter(in *Entry, now time.Time, opt Options) *Transition {
	j, c := in.Journey, in.Contact
	v := journey.Vars{Contact: c, Event: in.Event, Journey: journey.JourneyVars{ID: j.ID, Version: in.Version, EnteredAt: now, Steps: map[string]journey.StepVars{}}}
	notEntered := func(reason string, details map[string]any, format string, args ...any) *Transition {
		return &Transition{Contact: c, Decisions: []*nudge.Decision{{
			At: now, ContactID: c.ID, JourneyID: j.ID, Version: in.Version,
			Outcome: nudge.OutcomeNotEntered, Reason: reason, Message: fmt.Sprintf(format, args...), Details: details,
		}}}
	}

	key := ""
	if j.Key != nil {
		k, err := j.Key.EvalString(v)
		if err != nil {
			return notEntered(ReasonConditionError, map[string]any{"condition": j.Key.Source, "error": err.Error()},
				"Not entered: the journey's key (%s) could not be evaluated: %v.", j.Key.Source, err)
		}
		if k == "" {
			return notEntered(ReasonNoKey, map[string]any{"condition": j.Key.Source}, "Not entered: the journey's key (%s) is empty.", j.Key.Source)
		}
		key = k
		v.Journey.Key = k
	}

	var last *nudge.Enrollment // the latest ended enrollment of this key
	for _, en := range in.Existing {
		if en.JourneyID != j.ID || en.Key != key {
			continue
		}
		if en.Live() {
			return notEntered(ReasonAlreadyEnrolled, map[string]any{"enrollment_id": en.ID, "key": key},
				"Not entered: already in the journey%s (enrollment %s).", keyNote(key), en.ID)
		}
		if last == nil || en.EndedAt.After(last.EndedAt) {
			last = en
		}
	}
	if last != nil {
		switch j.Reentry.Kind {
		case journey.ReentryAlways:
		case journey.ReentryAfter:
			if again := last.EndedAt.Add(j.Reentry.After); now.Before(again) {
				return notEntered(ReasonReentryTooSoon, map[string]any{"enrollment_id": last.ID, "ended_at": last.EndedAt, "again_at": again},
					"Not entered: went through the journey%s until %s; re-entry is allowed %s after that, from %s.",
					keyNote(key), formatTime(last.EndedAt, time.UTC), humanDuration(j.Reentry.After), formatTime(again, time.UTC))
			}
		default:
			return notEntered(ReasonReentryNever, map[string]any{"enrollment_id": last.ID},
				"Not entered: already went through the journey%s, and it allows one pass only.", keyNote(key))
		}
	}

	if j.Entry != nil {
		ok, err := j.Entry.EvalBool(v)
		if err != nil {
			return notEntered(ReasonConditionError, map[string]any{"condition": j.Entry.Source, "error": err.Error()},
				"Not entered: the entry rule (%s) could not be evaluated: %v.", j.Entry.Source, err)
		}
		if !ok {
			return notEntered(ReasonEntryRule, map[string]any{"condition": j.Entry.Source}, "Not entered: the entry rule (%s) is false.", j.Entry.Source)
		}
	}

	en := &nudge.Enrollment{
		ID:        opt.NewID(),
		JourneyID: j.ID,
		Version:   in.Version,
		ContactID: c.ID,
		Key:       key,
		State:     nudge.EnrollmentWaiting,
		HeldOut:   j.HeldOut(c.ID),
		Event:     in.Event,
		Steps:     map[string]nudge.StepRecord{},
		EnteredAt: now,
		UpdatedAt: now,
	}
	// The goal's condition is checked at entry: a contact who already
	// converted does not enter. (A goal event cannot have happened yet.)
	if j.Goal != nil && j.Goal.Condition != nil {
		if ok, err := j.Goal.Condition.EvalBool(journey.Vars{Contact: c, Event: in.Event, Journey: journeyVars(j, en)}); err == nil && ok {
			return notEntered(ReasonGoalAlreadyMet, map[string]any{"condition": j.Goal.Condition.Source},
				"Not entered: the contact already meets the goal (%s).", j.Goal.Condition.Source)
		}
	}

	details := map[string]any{}
	if in.Event != nil {
		details["event"] = in.Event.Name
		details["event_message_id"] = in.Event.MessageID
	}
	if key != "" {
		details["key"] = key
	}
	msg := "Entered " + in.Why + keyNote(key) + "."
	if en.HeldOut {
		details["held_out"] = true
		msg += " In the holdout: decisions are recorded, nothing is sent."
	}
	entered := &nudge.Decision{
		At: now, ContactID: c.ID, JourneyID: j.ID, Version: in.Version, EnrollmentID: en.ID,
		Outcome: nudge.OutcomeEntered, Reason: in.Reason, Message: msg, Details: details,
	}
	tr := Advance(j, en, c, Input{Kind: InputEnter}, now, opt)
	tr.Decisions = append([]*nudge.Decision{entered}, tr.Decisions...)
	return tr
}

func keyNote(key string) string {
	if key == "" {
		return ""
	}
	return fmt.Sprintf(" (key %s)", key)
}
