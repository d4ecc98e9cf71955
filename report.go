package nudge

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"
)

// ReportParams selects the enrollments a report counts: those of one journey
// (all journeys for an overview), of one version (0: every version), that
// entered in [From, To) (zero From or To: unbounded). A report follows this
// cohort: its decisions, messages, clicks and opt-outs are those of these
// enrollments, whenever they happened.
type ReportParams struct {
	JourneyID string
	Version   int64
	From, To  time.Time
}

// ReportCohort counts enrollments by their state and, for an ended one, the
// reason of the decision that ended it (goal_met, an exit reason, …).
type ReportCohort struct {
	HeldOut bool   `json:"held_out"` // in the journey's holdout
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	Count   int64  `json:"count"`
}

// ReportOutcome counts decisions at one step by outcome and reason, and the
// distinct enrollments behind them (a deferred send is decided again).
type ReportOutcome struct {
	StepID      string `json:"step_id"`
	Channel     string `json:"channel,omitempty"`
	Outcome     string `json:"outcome"`
	Reason      string `json:"reason"`
	Decisions   int64  `json:"decisions"`
	Enrollments int64  `json:"enrollments"`
}

// ReportPath counts the enrollments that reached a step (had a decision
// there), by whether the step sent them a message, whether it held them out,
// whether they are in the journey's holdout, and whether they converted.
type ReportPath struct {
	StepID         string `json:"step_id"`
	Sent           bool   `json:"sent"`
	StepHeldOut    bool   `json:"step_held_out"`
	JourneyHeldOut bool   `json:"journey_held_out"`
	Converted      bool   `json:"converted"`
	Count          int64  `json:"count"`
}

// ReportMessages counts a step's messages by channel and current status.
type ReportMessages struct {
	StepID  string `json:"step_id"`
	Channel string `json:"channel"`
	Status  string `json:"status"`
	Count   int64  `json:"count"`
}

// ReportAction counts the distinct messages of a step that an event named
// Name (email.clicked, sms.clicked, sms.replied, email.complained) points
// at through its properties.message_id.
type ReportAction struct {
	StepID   string `json:"step_id"`
	Channel  string `json:"channel"`
	Name     string `json:"name"`
	Messages int64  `json:"messages"`
}

// ReportOptOut counts a step's messages (not cancelled) on one channel,
// and those followed by an opt-out of the same contact from that channel:
// for SMS within 24 hours, by keyword (STOP) or the provider; for email
// within 72 hours, by one-click unsubscribe (source form) or the provider
// (an unsubscribe or a spam complaint).
type ReportOptOut struct {
	StepID   string `json:"step_id"`
	Channel  string `json:"channel"`
	Sent     int64  `json:"sent"`
	OptedOut int64  `json:"opted_out"`
}

// ReportActionDelay says that Count messages of a step had their first
// Action (click: email.clicked or sms.clicked; reply: sms.replied, both
// naming the message in properties.message_id) Minutes whole minutes after
// the message was queued: the distribution of time to the next action.
type ReportActionDelay struct {
	StepID  string `json:"step_id"`
	Channel string `json:"channel"`
	Action  string `json:"action"`
	Minutes int64  `json:"minutes"`
	Count   int64  `json:"count"`
}

// ReportTouch is a message (not cancelled) of a converted enrollment.
type ReportTouch struct {
	StepID  string    `json:"step_id"`
	Channel string    `json:"channel"`
	At      time.Time `json:"at"` // when it was queued
}

// ReportConversion is one converted enrollment, compactly: when it entered
// and converted, the steps it reached and the messages it got, for time to
// goal, conversion by path and attribution.
type ReportConversion struct {
	HeldOut     bool          `json:"held_out"`
	EnteredAt   time.Time     `json:"entered_at"`
	ConvertedAt time.Time     `json:"converted_at"`
	Steps       []string      `json:"steps,omitempty"` // reached, in no particular order
	Touches     []ReportTouch `json:"touches,omitempty"`
}

// ReportStageMove counts the changes of a contact field (lifecycle_stage,
// journey_stage) from one value to another made after their enrollment
// entered, and the distinct enrollments whose contact made them.
type ReportStageMove struct {
	Field       string `json:"field"`
	From        string `json:"from"`
	To          string `json:"to"`
	Changes     int64  `json:"changes"`
	Enrollments int64  `json:"enrollments"`
}

// ContactStageChange is one change of a contact's lifecycle_stage or
// journey_stage (a new contact's stages are changes from ""). Source is
// what made it, as the records show: "journey:ID" when that journey's
// update_contact step decided at the same moment, "identify" when an
// identify event of the contact was received then (while events are kept),
// else "api" (the contacts API or an import).
type ContactStageChange struct {
	Field  string    `json:"field"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	At     time.Time `json:"at"`
	Source string    `json:"source"`
}

// ReportCustomer is an enrollment whose contact's lifecycle_stage became
// customer after entry: when (the first time), and when it next changed
// from customer (zero: it is a customer still).
type ReportCustomer struct {
	BecameAt time.Time `json:"became_at"`
	LeftAt   time.Time `json:"left_at,omitzero"`
}

// ReportData is what the store counts for one journey's report; package
// report turns it into funnels, rates and lift. Every slice is in a stable
// order (by its text columns).
type ReportData struct {
	Cohorts     []ReportCohort     `json:"cohorts"`
	Outcomes    []ReportOutcome    `json:"outcomes"`
	Paths       []ReportPath       `json:"paths"`
	Messages    []ReportMessages   `json:"messages"`
	Actions     []ReportAction     `json:"actions"`
	OptOuts     []ReportOptOut     `json:"opt_outs"`
	Conversions []ReportConversion `json:"conversions"` // by entry, then enrollment id
	// ActionDelays, by step, channel, action and minutes.
	ActionDelays []ReportActionDelay `json:"action_delays"`
	// Stages are the CRM movement of the cohort's contacts after entry (by
	// field, from, to); Customers those who became customers, by BecameAt.
	Stages    []ReportStageMove `json:"stages"`
	Customers []ReportCustomer  `json:"customers"`
}

// ReportJourneyCounts are one journey's headline numbers for the overview.
type ReportJourneyCounts struct {
	JourneyID        string `json:"journey_id"`
	Entered          int64  `json:"entered"`
	Converted        int64  `json:"converted"`
	HeldOut          int64  `json:"held_out"`           // entered into the holdout
	HeldOutConverted int64  `json:"held_out_converted"` // of those, converted
	SMSSent          int64  `json:"sms_sent"`           // SMS messages queued (not cancelled)
	SMSOptedOut      int64  `json:"sms_opted_out"`      // of those, followed by an opt-out within 24 h
	// Emails queued (not cancelled), those followed within 72 h by an email
	// opt-out, and those a spam complaint names (see ReportOptOut).
	EmailSent         int64 `json:"email_sent"`
	EmailUnsubscribed int64 `json:"email_unsubscribed"`
	EmailComplained   int64 `json:"email_complained"`
}

// ReportWeekBucket says that Contacts contact-weeks had Messages messages
// (of any journey and channel, not cancelled): the distribution of messages
// per contact per week. Weeks are 7-day periods counted from the Unix epoch.
type ReportWeekBucket struct {
	Messages int64 `json:"messages"`
	Contacts int64 `json:"contacts"`
}

// ReportOverviewData is what the store counts for the overview: each
// journey's headline numbers (JourneyID and Version of the params ignored)
// and, over messages queued in [From, To), messages per contact per week.
type ReportOverviewData struct {
	Journeys []ReportJourneyCounts `json:"journeys"` // by journey id
	PerWeek  []ReportWeekBucket    `json:"per_week"` // by Messages
}

// ReportStore answers the aggregate queries of reports: a few grouped
// queries per report, never one per enrollment. It keeps the steps paused
// on their numbers too (StepPauseStore).
type ReportStore interface {
	StepPauseStore
	// ContactStageList returns a contact's stage changes, oldest first
	// (none for an unknown contact).
	ContactStageList(ctx context.Context, contactID string) ([]*ContactStageChange, error)
	// ReportJourney counts one journey's enrollments selected by p.
	// ENOTFOUND if the journey does not exist; EINVALID if JourneyID is
	// empty or To is not after From.
	ReportJourney(ctx context.Context, p *ReportParams) (*ReportData, error)
	// ReportOverview counts every journey's enrollments that entered in
	// [p.From, p.To). EINVALID if To is not after From.
	ReportOverview(ctx context.Context, p *ReportParams) (*ReportOverviewData, error)
}

// CheckReportParams validates p for ReportJourney (journey true) or
// ReportOverview.
func CheckReportParams(p *ReportParams, journey bool) error {
	if journey && p.JourneyID == "" {
		return FieldErrorf("journey_id", "required")
	}
	if p.Version < 0 {
		return FieldErrorf("version", "%d is not a version (1, 2, …; 0 for all)", p.Version)
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.To.After(p.From) {
		return FieldErrorf("to", "%s is not after from (%s)", p.To.Format(time.RFC3339), p.From.Format(time.RFC3339))
	}
	return nil
}

// StepPause is an SMS step paused automatically because too many of its
// texts were followed by an opt-out: while it is paused, the step sends
// nothing (its sends are skipped with Reason, the policy's
// step_paused_optout_rate) until an admin resumes it. Sent, OptedOut and Rate are the numbers that crossed
// Threshold, counted over the step's texts since Since.
type StepPause struct {
	JourneyID string    `json:"journey_id"`
	StepID    string    `json:"step_id"`
	Reason    string    `json:"reason"`
	Sent      int64     `json:"sent"`
	OptedOut  int64     `json:"opted_out"`
	Rate      float64   `json:"rate"`
	Threshold float64   `json:"threshold"`
	MinSends  int64     `json:"min_sends"`
	Since     time.Time `json:"since"`
	PausedAt  time.Time `json:"paused_at"`
	ResumedAt time.Time `json:"resumed_at,omitzero"` // zero while paused
	ResumedBy string    `json:"resumed_by,omitempty"`
}

// Active reports whether the pause still holds.
func (p *StepPause) Active() bool { return p.ResumedAt.IsZero() }

// StepPauseListParams selects pauses: of one journey ("" for all), only
// those that hold (Active) or their whole history, newest first.
type StepPauseListParams struct {
	JourneyID string
	Active    bool
}

// StepOptOutCount is one SMS step's texts (not cancelled) queued since a
// time, and how many of them were followed within 24 hours by an SMS
// opt-out of the same contact from a keyword (STOP) or the provider.
type StepOptOutCount struct {
	JourneyID string    `json:"journey_id"`
	StepID    string    `json:"step_id"`
	Since     time.Time `json:"since"` // the later of the params' Since and the step's last resume
	Sent      int64     `json:"sent"`
	OptedOut  int64     `json:"opted_out"`
}

// StepPauseStore keeps the steps paused on their opt-out rate.
type StepPauseStore interface {
	// StepPausePut pauses p's step unless a pause of it holds already;
	// it reports whether it paused it. EINVALID without a journey or step.
	StepPausePut(ctx context.Context, p *StepPause) (bool, error)
	// StepPauseList returns the pauses p selects, newest first.
	StepPauseList(ctx context.Context, p *StepPauseListParams) ([]*StepPause, error)
	// StepPauseActive returns the pause that holds for one step, or
	// ENOTFOUND.
	StepPauseActive(ctx context.Context, journeyID, stepID string) (*StepPause, error)
	// StepResume ends the pause that holds for a step, recording who and
	// when, and returns it; ENOTFOUND when the step is not paused.
	StepResume(ctx context.Context, journeyID, stepID, by string, now time.Time) (*StepPause, error)
	// StepOptOutCounts counts every SMS step's texts queued in
	// [since, now) — and after the step's last resume — and their
	// opt-outs, by journey and step.
	StepOptOutCounts(ctx context.Context, since, now time.Time) ([]StepOptOutCount, error)
}

// CheckStepPause validates a pause for StepPausePut.
func CheckStepPause(p *StepPause) error {
	switch {
	case p == nil:
		return Errorf(EINVALID, "step pause required")
	case p.JourneyID == "":
		return FieldErrorf("journey_id", "required")
	case p.StepID == "":
		return FieldErrorf("step_id", "required")
	case p.Reason == "":
		return FieldErrorf("reason", "required")
	case p.PausedAt.IsZero():
		return FieldErrorf("paused_at", "required")
	}
	return nil
}

// AddHealth records one row of the stores' overview health query: channel
// sms or email with its messages sent and followed by an opt-out, or
// "complaint" with the emails a spam complaint names.
func (c *ReportJourneyCounts) AddHealth(channel string, sent, optedOut, complained int64) {
	switch channel {
	case ChannelSMS:
		c.SMSSent, c.SMSOptedOut = sent, optedOut
	case ChannelEmail:
		c.EmailSent, c.EmailUnsubscribed = sent, optedOut
	default:
		c.EmailComplained = complained
	}
}

// ReportOptOutsOf makes a report's opt-out rows, by step and channel (SMS
// and email), from its message counts (the messages not cancelled) and the
// number of them followed by an opt-out, by step and channel.
func ReportOptOutsOf(messages []ReportMessages, optedOut map[[2]string]int64) []ReportOptOut {
	out := []ReportOptOut{}
	at := map[[2]string]int{}
	for _, m := range messages {
		if m.Status == MessageCancelled || m.Channel != ChannelSMS && m.Channel != ChannelEmail {
			continue
		}
		k := [2]string{m.StepID, m.Channel}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, ReportOptOut{StepID: m.StepID, Channel: m.Channel, OptedOut: optedOut[k]})
		}
		out[i].Sent += m.Count
	}
	slices.SortFunc(out, func(a, b ReportOptOut) int {
		return cmp.Or(cmp.Compare(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel))
	})
	return out
}

// ReportDays splits p's range of entry times for a store that keeps its
// counts per UTC day: the whole days [FromDay, ToDay), as days since the
// Unix epoch (unbounded ends as the extreme int64s), and the parts of days
// at either end (Edges: p with a narrower From and To), to count from the
// rows. A range within one day is all edge.
func ReportDays(p *ReportParams) (fromDay, toDay int64, edges []ReportParams) {
	const day = 24 * time.Hour
	fromDay, toDay = math.MinInt64, math.MaxInt64
	var lo, hi ReportParams
	if !p.From.IsZero() {
		t := p.From.UTC().Truncate(day)
		fromDay = t.Unix() / 86400
		if !t.Equal(p.From) {
			fromDay++
			lo = ReportParams{JourneyID: p.JourneyID, Version: p.Version, From: p.From, To: t.Add(day)}
		}
	}
	if !p.To.IsZero() {
		t := p.To.UTC().Truncate(day)
		toDay = t.Unix() / 86400
		if !t.Equal(p.To) {
			hi = ReportParams{JourneyID: p.JourneyID, Version: p.Version, From: t, To: p.To}
		}
	}
	if fromDay >= toDay {
		return 0, 0, []ReportParams{*p}
	}
	for _, e := range []ReportParams{lo, hi} {
		if !e.To.IsZero() {
			edges = append(edges, e)
		}
	}
	return fromDay, toDay, edges
}

// SumCounts merges the rows of d's Cohorts, Outcomes, Paths and Messages
// that have the same key (counted in parts: per day, and at the edges of a
// range), drops those that sum to zero, and sorts them by their text
// columns as ReportData promises.
func (d *ReportData) SumCounts() {
	d.Cohorts = sumRows(d.Cohorts, func(c ReportCohort) ReportCohort { c.Count = 0; return c },
		func(a, b *ReportCohort) { a.Count += b.Count }, func(c ReportCohort) bool { return c.Count != 0 },
		func(a, b ReportCohort) int {
			return cmp.Or(compareBool(a.HeldOut, b.HeldOut), cmp.Compare(a.State, b.State), cmp.Compare(a.Reason, b.Reason))
		})
	d.Outcomes = sumRows(d.Outcomes, func(o ReportOutcome) ReportOutcome { o.Decisions, o.Enrollments = 0, 0; return o },
		func(a, b *ReportOutcome) { a.Decisions += b.Decisions; a.Enrollments += b.Enrollments },
		func(o ReportOutcome) bool { return o.Decisions != 0 },
		func(a, b ReportOutcome) int {
			return cmp.Or(cmp.Compare(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel),
				cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Reason, b.Reason))
		})
	d.Paths = sumRows(d.Paths, func(p ReportPath) ReportPath { p.Count = 0; return p },
		func(a, b *ReportPath) { a.Count += b.Count }, func(p ReportPath) bool { return p.Count != 0 },
		func(a, b ReportPath) int {
			return cmp.Or(cmp.Compare(a.StepID, b.StepID), compareBool(a.Sent, b.Sent), compareBool(a.StepHeldOut, b.StepHeldOut),
				compareBool(a.JourneyHeldOut, b.JourneyHeldOut), compareBool(a.Converted, b.Converted))
		})
	d.Messages = sumRows(d.Messages, func(m ReportMessages) ReportMessages { m.Count = 0; return m },
		func(a, b *ReportMessages) { a.Count += b.Count }, func(m ReportMessages) bool { return m.Count != 0 },
		func(a, b ReportMessages) int {
			return cmp.Or(cmp.Compare(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Status, b.Status))
		})
}

// sumRows adds up rows with the same key (the row with its counts zeroed),
// keeps those that count something, and sorts them.
func sumRows[T comparable](rows []T, key func(T) T, add func(a, b *T), keep func(T) bool, compare func(a, b T) int) []T {
	at := make(map[T]int, len(rows))
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		k := key(r)
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, k)
		}
		add(&out[i], &r)
	}
	out = slices.DeleteFunc(out, func(r T) bool { return !keep(r) })
	slices.SortFunc(out, compare)
	return out
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}
