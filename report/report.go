// Package report turns what the store counts (nudge.ReportStore) into the
// reports a marketer reads: the funnel in journey-graph order, time to goal,
// conversion by path, lift over the holdout with a confidence interval,
// attribution and opt-out health. It does no I/O of its own beyond asking
// the store, so that the API, the CLI and the simulator show the same
// numbers.
package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// Store is what a report reads.
type Store interface {
	nudge.ReportStore
	JourneyGet(ctx context.Context, id string) (*nudge.Journey, error)
	JourneyVersionGet(ctx context.Context, id string, version int64) (*nudge.JourneyVersion, error)
}

// Options tune a report; zero values take the defaults.
type Options struct {
	SMSWindow   time.Duration // attribution window after an SMS (default 24 h)
	EmailWindow time.Duration // attribution window after an email (default 72 h)
	// MinArm and MinConversions are the smallest arm and number of
	// conversions per arm for which lift is shown (defaults 30 and 5).
	MinArm, MinConversions int64
	// Now is when the report is read: customer retention counts only the
	// customers who became one at least 30/60/90 days before it. Zero: the
	// latest time the data holds.
	Now time.Time
}

func (o Options) withDefaults() Options {
	o.SMSWindow = cmp.Or(o.SMSWindow, 24*time.Hour)
	o.EmailWindow = cmp.Or(o.EmailWindow, 72*time.Hour)
	o.MinArm = cmp.Or(o.MinArm, 30)
	o.MinConversions = cmp.Or(o.MinConversions, 5)
	return o
}

// NotEnoughData is the note of a comparison whose sample is too small.
const NotEnoughData = "not enough data yet"

// RetentionDays are the customer retention windows.
var RetentionDays = []int{30, 60, 90}

// Report is one journey's report.
type Report struct {
	JourneyID string    `json:"journey_id"`
	Name      string    `json:"name"`
	Version   int64     `json:"version,omitempty"` // 0: every version
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`

	Entered        int64   `json:"entered"`
	HeldOut        int64   `json:"held_out"` // of Entered, in the journey's holdout
	Converted      int64   `json:"converted"`
	Completed      int64   `json:"completed"`
	Exited         int64   `json:"exited"`
	Waiting        int64   `json:"waiting"` // still active
	ConversionRate float64 `json:"conversion_rate"`
	// Ended counts enrollments by state and the reason that ended them.
	Ended []Ended `json:"ended"`

	Funnel     []FunnelStep `json:"funnel"`
	TimeToGoal TimeToGoal   `json:"time_to_goal"`
	Paths      []Path       `json:"paths"`
	// Lift compares the journey's treated enrollments with its holdout;
	// StepLift, per step with a step holdout, those who got the step's
	// message with those the step held out.
	Lift        Lift          `json:"lift"`
	StepLift    []Lift        `json:"step_lift,omitempty"`
	Attribution []Attribution `json:"attribution"`
	OptOuts     []OptOut      `json:"opt_outs"`
	SMSSent     int64         `json:"sms_sent"`
	SMSOptedOut int64         `json:"sms_opted_out"`
	OptOutRate  float64       `json:"opt_out_rate"`
	// Email health: emails queued (not cancelled), those a spam complaint
	// names, and those followed within 72 h by an email opt-out (one-click
	// unsubscribe or the provider's unsubscribe or complaint).
	EmailSent         int64   `json:"email_sent"`
	EmailComplained   int64   `json:"email_complained"`
	EmailUnsubscribed int64   `json:"email_unsubscribed"`
	ComplaintRate     float64 `json:"complaint_rate"`
	UnsubscribeRate   float64 `json:"unsubscribe_rate"`
	// TimeToAction is, per message step, the time from each message to
	// its first click, its first reply, and the goal (messages of converted
	// enrollments sent before the conversion).
	TimeToAction []ActionTime `json:"time_to_action"`
	// PausedSteps are the SMS steps paused on their opt-out rate now;
	// their sends are skipped until an admin resumes them.
	PausedSteps []*nudge.StepPause `json:"paused_steps"`
	// CRM movement: changes of lifecycle_stage and journey_stage the
	// cohort's contacts made after entry, from → to; how many became
	// customers, and how many of those were still customers 30, 60 and 90
	// days after. CRM says it in a sentence.
	StageMoves      []nudge.ReportStageMove `json:"stage_moves"`
	BecameCustomers int64                   `json:"became_customers"`
	Retention       []Retention             `json:"customer_retention"`
	CRM             string                  `json:"crm_movement"`
	Notes           []string                `json:"notes,omitempty"`
}

// Retention is how many of the contacts who became customers after entry
// at least Days days ago (Eligible) were customers still Days days after
// (Retained). Note says why there is no rate.
type Retention struct {
	Days     int     `json:"days"`
	Eligible int64   `json:"eligible"`
	Retained int64   `json:"retained"`
	Rate     float64 `json:"rate"`
	Note     string  `json:"note,omitempty"`
}

// Ended is a count of enrollments in one state, for one reason.
type Ended struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Count  int64  `json:"count"`
}

// FunnelStep is one step's line of the funnel.
type FunnelStep struct {
	StepID       string           `json:"step_id"`
	Kind         string           `json:"kind"`
	Reached      int64            `json:"reached"`
	ReachedRate  float64          `json:"reached_rate"` // of entered
	Sent         int64            `json:"sent"`         // messages queued
	Statuses     map[string]int64 `json:"statuses,omitempty"`
	Delivered    int64            `json:"delivered"`
	Failed       int64            `json:"failed"` // failed or undelivered
	Clicked      int64            `json:"clicked"`
	Replied      int64            `json:"replied"`
	HeldOut      int64            `json:"held_out"`
	Skipped      map[string]int64 `json:"skipped,omitempty"`  // enrollments by reason
	Deferred     map[string]int64 `json:"deferred,omitempty"` // enrollments by reason
	Converted    int64            `json:"converted"`          // of Reached
	OptedOut     int64            `json:"opted_out"`          // SMS followed by an opt-out within 24 h
	Complained   int64            `json:"complained"`         // emails a spam complaint names
	Unsubscribed int64            `json:"unsubscribed"`       // emails followed by an unsubscribe within 72 h
}

// ActionTime is how long after a step's messages their next action came:
// Action is click, reply or goal.
type ActionTime struct {
	StepID  string `json:"step_id"`
	Channel string `json:"channel"`
	Action  string `json:"action"`
	Spread  Spread `json:"spread"`
}

// TimeToGoal is how long converting took, from entry and from the last
// message before the goal.
type TimeToGoal struct {
	FromEntry        Spread            `json:"from_entry"`
	FromEntryTreated Spread            `json:"from_entry_treated"`
	FromEntryHeldOut Spread            `json:"from_entry_held_out"`
	FromLastMessage  map[string]Spread `json:"from_last_message"` // by channel
}

// Arm is one side of a comparison.
type Arm struct {
	Enrollments int64   `json:"enrollments"`
	Converted   int64   `json:"converted"`
	Rate        float64 `json:"rate"`
	TimeToGoal  Spread  `json:"time_to_goal"`
}

// Path compares, at one message step, the enrollments it sent a message to
// with those that reached it and got none (deferred past expiry, capped, no
// consent, held out, …).
type Path struct {
	StepID  string `json:"step_id"`
	Channel string `json:"channel"`
	With    Arm    `json:"with"`
	Without Arm    `json:"without"`
}

// Lift is treated against held out: absolute difference of conversion
// rates with its 95% interval (Newcombe), relative lift, and the difference
// of median time to goal; or Note when the sample is too small.
type Lift struct {
	StepID        string  `json:"step_id,omitempty"`
	Treated       Arm     `json:"treated"`
	HeldOut       Arm     `json:"held_out"`
	Measured      bool    `json:"measured"`
	Diff          float64 `json:"diff,omitempty"`
	Low           float64 `json:"low,omitempty"`
	High          float64 `json:"high,omitempty"`
	Relative      float64 `json:"relative,omitempty"`                 // Diff / held-out rate
	MedianTimeDif float64 `json:"median_time_diff_seconds,omitempty"` // treated − held out
	Note          string  `json:"note,omitempty"`
}

// Attribution counts conversions that followed a step's message within
// the channel's window: the last such message (last touch), or any.
type Attribution struct {
	StepID    string `json:"step_id"`
	Channel   string `json:"channel"`
	LastTouch int64  `json:"last_touch"`
	AnyTouch  int64  `json:"any_touch"`
}

// OptOut is an SMS step's opt-out health.
type OptOut struct {
	StepID   string  `json:"step_id"`
	Sent     int64   `json:"sent"`
	OptedOut int64   `json:"opted_out"`
	Rate     float64 `json:"rate"`
}

// Journey reads and builds the report of p.JourneyID. The version named
// (else the latest) gives the step order.
func Journey(ctx context.Context, st Store, p *nudge.ReportParams, opt Options) (*Report, error) {
	j, err := st.JourneyGet(ctx, p.JourneyID)
	if err != nil {
		return nil, err
	}
	v, err := st.JourneyVersionGet(ctx, j.ID, cmp.Or(p.Version, j.Version))
	if err != nil {
		return nil, err
	}
	def, err := journey.Parse(j.ID+".yaml", v.Source, journey.Options{})
	if err != nil {
		return nil, fmt.Errorf("report: journey %s version %d: %w", j.ID, v.Version, err)
	}
	d, err := st.ReportJourney(ctx, p)
	if err != nil {
		return nil, err
	}
	r := Build(def, d, opt)
	r.Name, r.Version, r.From, r.To = j.Name, p.Version, p.From, p.To
	if r.PausedSteps, err = st.StepPauseList(ctx, &nudge.StepPauseListParams{JourneyID: j.ID, Active: true}); err != nil {
		return nil, err
	}
	return r, nil
}

// order returns the journey's steps in graph order: breadth first from
// the first step along each step's targets, then any unreachable ones in
// file order.
func order(j *journey.Journey) []*journey.Step {
	var out []*journey.Step
	seen := map[string]bool{}
	queue := []*journey.Step{}
	if f := j.First(); f != nil {
		queue = append(queue, f)
		seen[f.ID] = true
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		out = append(out, s)
		for _, t := range s.Targets() {
			if n := j.Step(t); n != nil && !seen[t] {
				seen[t] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range j.Steps {
		if !seen[s.ID] {
			out = append(out, s)
		}
	}
	return out
}

// Build computes a report from the store's counts; j gives the step order
// and kinds. Steps the data names that j does not (an older version's)
// follow j's, by id.
func Build(j *journey.Journey, d *nudge.ReportData, opt Options) *Report {
	opt = opt.withDefaults()
	r := &Report{JourneyID: j.ID, Name: j.Name, Funnel: []FunnelStep{},
		Paths: []Path{}, Attribution: []Attribution{}, OptOuts: []OptOut{}, Ended: []Ended{}, PausedSteps: []*nudge.StepPause{}}
	r.Notes = append(r.Notes,
		"clicks, replies and complaints count events whose properties.message_id names a message")

	// Enrollments.
	var heldConv int64
	for _, c := range d.Cohorts {
		r.Entered += c.Count
		if c.HeldOut {
			r.HeldOut += c.Count
		}
		switch c.State {
		case nudge.EnrollmentConverted:
			r.Converted += c.Count
			if c.HeldOut {
				heldConv += c.Count
			}
		case nudge.EnrollmentCompleted:
			r.Completed += c.Count
		case nudge.EnrollmentExited:
			r.Exited += c.Count
		case nudge.EnrollmentWaiting:
			r.Waiting += c.Count
		}
		i := slices.IndexFunc(r.Ended, func(e Ended) bool { return e.State == c.State && e.Reason == c.Reason })
		if i < 0 {
			r.Ended = append(r.Ended, Ended{State: c.State, Reason: c.Reason})
			i = len(r.Ended) - 1
		}
		r.Ended[i].Count += c.Count
	}
	r.ConversionRate = rate(r.Converted, r.Entered)

	// Funnel, in graph order.
	steps := map[string]*FunnelStep{}
	kinds := map[string]string{}
	var ids []string
	for _, s := range order(j) {
		ids = append(ids, s.ID)
		kinds[s.ID] = string(s.Kind)
	}
	var extra []string
	get := func(id string) *FunnelStep {
		if f, ok := steps[id]; ok {
			return f
		}
		f := &FunnelStep{StepID: id, Kind: kinds[id], Statuses: map[string]int64{}, Skipped: map[string]int64{}, Deferred: map[string]int64{}}
		steps[id] = f
		if _, ok := kinds[id]; !ok {
			extra = append(extra, id)
		}
		return f
	}
	for _, id := range ids {
		get(id)
	}
	for _, p := range d.Paths {
		f := get(p.StepID)
		f.Reached += p.Count
		if p.Converted {
			f.Converted += p.Count
		}
	}
	for _, o := range d.Outcomes {
		if o.StepID == "" {
			continue
		}
		f := get(o.StepID)
		switch o.Outcome {
		case nudge.OutcomeSkipped:
			f.Skipped[o.Reason] += o.Enrollments
		case nudge.OutcomeDeferred:
			f.Deferred[o.Reason] += o.Enrollments
		case nudge.OutcomeHeldOut:
			f.HeldOut += o.Enrollments
		}
	}
	channels := map[string]string{}
	for _, m := range d.Messages {
		f := get(m.StepID)
		channels[m.StepID] = m.Channel
		if m.Status == nudge.MessageCancelled {
			f.Statuses[m.Status] += m.Count
			continue
		}
		f.Sent += m.Count
		f.Statuses[m.Status] += m.Count
		switch m.Status {
		case nudge.MessageDelivered:
			f.Delivered += m.Count
		case nudge.MessageFailed, nudge.MessageUndelivered:
			f.Failed += m.Count
		}
	}
	for _, a := range d.Actions {
		f := get(a.StepID)
		switch a.Name {
		case "email.clicked", "sms.clicked":
			f.Clicked += a.Messages
		case "sms.replied":
			f.Replied += a.Messages
		case "email.complained":
			f.Complained += a.Messages
			r.EmailComplained += a.Messages
		}
	}
	for _, o := range d.OptOuts {
		f := get(o.StepID)
		if o.Channel == nudge.ChannelEmail {
			f.Unsubscribed = o.OptedOut
			r.EmailSent += o.Sent
			r.EmailUnsubscribed += o.OptedOut
			continue
		}
		f.OptedOut = o.OptedOut
		r.SMSSent += o.Sent
		r.SMSOptedOut += o.OptedOut
		r.OptOuts = append(r.OptOuts, OptOut{StepID: o.StepID, Sent: o.Sent, OptedOut: o.OptedOut, Rate: rate(o.OptedOut, o.Sent)})
	}
	r.OptOutRate = rate(r.SMSOptedOut, r.SMSSent)
	r.ComplaintRate, r.UnsubscribeRate = rate(r.EmailComplained, r.EmailSent), rate(r.EmailUnsubscribed, r.EmailSent)
	slices.Sort(extra)
	for _, id := range append(ids, extra...) {
		f := steps[id]
		f.ReachedRate = rate(f.Reached, r.Entered)
		r.Funnel = append(r.Funnel, *f)
	}
	pos := map[string]int{}
	for i, f := range r.Funnel {
		pos[f.StepID] = i
	}
	byStep := func(a, b string) int { return cmp.Compare(pos[a], pos[b]) }
	slices.SortFunc(r.OptOuts, func(a, b OptOut) int { return byStep(a.StepID, b.StepID) })

	// Time to goal and attribution, from the converted enrollments.
	var all, treated, held []time.Duration
	fromLast := map[string][]time.Duration{}
	toAction := map[[3]string][]time.Duration{} // step, channel, action → delays
	for _, a := range d.ActionDelays {
		k := [3]string{a.StepID, a.Channel, a.Action}
		for range a.Count {
			toAction[k] = append(toAction[k], time.Duration(a.Minutes)*time.Minute)
		}
	}
	attr := map[[2]string]*Attribution{}
	touchedAt := map[string]map[bool][]time.Duration{} // step → got a message → time to goal
	for _, c := range d.Conversions {
		dt := c.ConvertedAt.Sub(c.EnteredAt)
		all = append(all, dt)
		if c.HeldOut {
			held = append(held, dt)
		} else {
			treated = append(treated, dt)
		}
		var last *nudge.ReportTouch
		anyTouch := map[[2]string]bool{}
		got := map[string]bool{}
		for i := range c.Touches {
			t := &c.Touches[i]
			got[t.StepID] = true
			if t.At.After(c.ConvertedAt) {
				continue
			}
			if last == nil || !t.At.Before(last.At) {
				last = t
			}
			w := opt.EmailWindow
			if t.Channel == nudge.ChannelSMS {
				w = opt.SMSWindow
			}
			if c.ConvertedAt.Sub(t.At) <= w {
				anyTouch[[2]string{t.StepID, t.Channel}] = true
			}
		}
		if last != nil {
			fromLast[last.Channel] = append(fromLast[last.Channel], c.ConvertedAt.Sub(last.At))
		}
		for _, t := range c.Touches {
			if !t.At.After(c.ConvertedAt) {
				k := [3]string{t.StepID, t.Channel, "goal"}
				toAction[k] = append(toAction[k], c.ConvertedAt.Sub(t.At))
			}
		}
		at := func(k [2]string) *Attribution {
			a, ok := attr[k]
			if !ok {
				a = &Attribution{StepID: k[0], Channel: k[1]}
				attr[k] = a
			}
			return a
		}
		for k := range anyTouch {
			at(k).AnyTouch++
		}
		if last != nil && anyTouch[[2]string{last.StepID, last.Channel}] {
			at([2]string{last.StepID, last.Channel}).LastTouch++
		}
		for _, s := range c.Steps {
			if touchedAt[s] == nil {
				touchedAt[s] = map[bool][]time.Duration{}
			}
			touchedAt[s][got[s]] = append(touchedAt[s][got[s]], dt)
		}
	}
	r.TimeToGoal = TimeToGoal{FromEntry: spread(all), FromEntryTreated: spread(treated),
		FromEntryHeldOut: spread(held), FromLastMessage: map[string]Spread{}}
	for ch, ds := range fromLast {
		r.TimeToGoal.FromLastMessage[ch] = spread(ds)
	}
	for _, a := range attr {
		r.Attribution = append(r.Attribution, *a)
	}
	r.TimeToAction = []ActionTime{}
	for k, ds := range toAction {
		r.TimeToAction = append(r.TimeToAction, ActionTime{StepID: k[0], Channel: k[1], Action: k[2], Spread: spread(ds)})
	}
	slices.SortFunc(r.TimeToAction, func(a, b ActionTime) int {
		return cmp.Or(byStep(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Action, b.Action))
	})
	slices.SortFunc(r.Attribution, func(a, b Attribution) int {
		return cmp.Or(byStep(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel))
	})

	// Conversion by path and step holdouts, at each message step.
	type arms struct{ with, without, stepHeld Arm }
	paths := map[string]*arms{}
	for _, p := range d.Paths {
		if channels[p.StepID] == "" && kinds[p.StepID] != string(journey.KindSMS) && kinds[p.StepID] != string(journey.KindEmail) {
			continue
		}
		a := paths[p.StepID]
		if a == nil {
			a = &arms{}
			paths[p.StepID] = a
		}
		conv := int64(0)
		if p.Converted {
			conv = p.Count
		}
		side := &a.without
		if p.Sent {
			side = &a.with
		}
		side.Enrollments += p.Count
		side.Converted += conv
		if p.StepHeldOut && !p.JourneyHeldOut {
			a.stepHeld.Enrollments += p.Count
			a.stepHeld.Converted += conv
		}
	}
	for id, a := range paths {
		ch := cmp.Or(channels[id], kinds[id])
		a.with.Rate, a.without.Rate = rate(a.with.Converted, a.with.Enrollments), rate(a.without.Converted, a.without.Enrollments)
		a.with.TimeToGoal, a.without.TimeToGoal = spread(touchedAt[id][true]), spread(touchedAt[id][false])
		r.Paths = append(r.Paths, Path{StepID: id, Channel: ch, With: a.with, Without: a.without})
		if a.stepHeld.Enrollments > 0 {
			l := lift(a.with, a.stepHeld, opt)
			l.StepID = id
			r.StepLift = append(r.StepLift, l)
		}
	}
	slices.SortFunc(r.Paths, func(a, b Path) int { return byStep(a.StepID, b.StepID) })
	slices.SortFunc(r.StepLift, func(a, b Lift) int { return byStep(a.StepID, b.StepID) })

	crm(r, d, opt)

	// Lift over the journey's holdout.
	tr := Arm{Enrollments: r.Entered - r.HeldOut, Converted: r.Converted - heldConv, TimeToGoal: r.TimeToGoal.FromEntryTreated}
	ho := Arm{Enrollments: r.HeldOut, Converted: heldConv, TimeToGoal: r.TimeToGoal.FromEntryHeldOut}
	r.Lift = lift(tr, ho, opt)
	if r.HeldOut == 0 {
		r.Lift.Note = "no holdout: the journey holds no one out"
	}
	return r
}

// lift compares a treated arm with a held-out one.
func lift(tr, ho Arm, opt Options) Lift {
	tr.Rate, ho.Rate = rate(tr.Converted, tr.Enrollments), rate(ho.Converted, ho.Enrollments)
	l := Lift{Treated: tr, HeldOut: ho}
	if tr.Enrollments < opt.MinArm || ho.Enrollments < opt.MinArm ||
		tr.Converted < opt.MinConversions || ho.Converted < opt.MinConversions {
		l.Note = fmt.Sprintf("%s (at least %d enrollments and %d conversions per arm)", NotEnoughData, opt.MinArm, opt.MinConversions)
		return l
	}
	l.Measured = true
	l.Diff, l.Low, l.High = Newcombe(tr.Converted, tr.Enrollments, ho.Converted, ho.Enrollments)
	if ho.Rate > 0 {
		l.Relative = l.Diff / ho.Rate
	}
	if tr.TimeToGoal.Count > 0 && ho.TimeToGoal.Count > 0 {
		l.MedianTimeDif = tr.TimeToGoal.Median - ho.TimeToGoal.Median
	}
	return l
}

// crm fills the CRM movement: the stage changes after entry, and customer
// retention where enough time has passed to tell.
func crm(r *Report, d *nudge.ReportData, opt Options) {
	r.StageMoves = append([]nudge.ReportStageMove{}, d.Stages...)
	r.BecameCustomers = int64(len(d.Customers))
	now := opt.Now
	if now.IsZero() {
		for _, c := range d.Customers {
			now = latest(now, c.BecameAt, c.LeftAt)
		}
		for _, c := range d.Conversions {
			now = latest(now, c.ConvertedAt)
		}
	}
	r.Retention = []Retention{}
	for _, days := range RetentionDays {
		n := Retention{Days: days}
		span := time.Duration(days) * 24 * time.Hour
		for _, c := range d.Customers {
			if now.Sub(c.BecameAt) < span {
				continue
			}
			n.Eligible++
			if c.LeftAt.IsZero() || c.LeftAt.Sub(c.BecameAt) >= span {
				n.Retained++
			}
		}
		n.Rate = rate(n.Retained, n.Eligible)
		if n.Eligible == 0 {
			n.Note = fmt.Sprintf("%s: no one became a customer %d days or more ago", NotEnoughData, days)
		}
		r.Retention = append(r.Retention, n)
	}
	var changed int64
	for _, m := range r.StageMoves {
		changed += m.Changes
	}
	switch {
	case changed == 0:
		r.CRM = "No enrolled contact's lifecycle_stage or journey_stage changed after entry."
	default:
		r.CRM = fmt.Sprintf("%d changes of lifecycle_stage or journey_stage after entry; %d contacts became customers.", changed, r.BecameCustomers)
		for _, n := range r.Retention {
			if n.Eligible > 0 {
				r.CRM += fmt.Sprintf(" Still customers after %d days: %d of %d (%.0f%%).", n.Days, n.Retained, n.Eligible, 100*n.Rate)
			}
		}
	}
}

func latest(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}
