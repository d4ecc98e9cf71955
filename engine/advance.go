package engine

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// MaxSteps bounds the steps one transition runs. Validation rejects loops
// without a wait, but a wait whose time has already passed continues at
// once, so a loop through one could still spin: past MaxSteps the enrollment
// exits with ReasonStepLimit.
const MaxSteps = 100

// InputKind says why a transition runs.
type InputKind int

const (
	// InputEnter: a new enrollment starts at the journey's first step.
	InputEnter InputKind = iota
	// InputWake: the enrollment's wake time came: a wait ends (next step), a
	// wait_for times out (on_timeout), a deferred send is tried again.
	InputWake
	// InputEvent: the event a wait_for awaits arrived (on_event).
	InputEvent
)

// Input is what makes an enrollment advance.
type Input struct {
	Kind  InputKind
	Event *nudge.Event // InputEvent: the awaited event
}

// Send is what a Policy decides about: one email, SMS or webhook a step
// would send now.
type Send struct {
	Journey    *journey.Journey
	Step       *journey.Step
	Enrollment *nudge.Enrollment
	Contact    *nudge.Contact
	Channel    string
	Now        time.Time
	// Reached is when the enrollment first reached the step: a deferred
	// send tried again keeps it (a step's expires counts from it).
	Reached time.Time
}

// Policy is the guardrails' hook (consent, quiet hours, caps, SMS-allowed
// points). It returns nil, or a decision with Outcome nudge.OutcomeSent,
// to let a send go out; an allowing decision's Details and PolicyVersion
// are kept on the send's decision. Outcome nudge.OutcomeSkipped skips the
// step (the enrollment moves on); nudge.OutcomeDeferred holds the
// enrollment at the step until Details["until"] (a time.Time), when the
// step runs again. The engine fills the decision's contact, journey,
// enrollment, step, channel and time.
//
// Options.Policy nil does not mean "allow everything": Advance then asks
// DefaultPolicy, the shipped policy on what the contact alone says, which
// sends no marketing SMS (it knows of no opt-in). The Engine always passes
// its guardrails (see Guard).
type Policy func(s *Send) *nudge.Decision

// Transition is what one evaluation of an enrollment changes: its new state
// and what to commit with it.
type Transition struct {
	Enrollment *nudge.Enrollment // the new state (a copy; the input is not changed)
	Decisions  []*nudge.Decision
	Messages   []*nudge.Message
	Patches    []*nudge.ContactPatch
	// Cancel asks to cancel the enrollment's queued messages.
	Cancel bool
	// Contact is the contact as the steps left it (update_contact applied).
	Contact *nudge.Contact
}

// Options are the parts of the engine's configuration a transition uses.
type Options struct {
	NewID  func() string
	Policy Policy
}

// Advance runs en from where in says until it waits or ends, at now. It is
// the engine's pure core: it reads nothing but its arguments and the
// journey, and the same arguments give the same transition (given NewID).
func Advance(j *journey.Journey, en *nudge.Enrollment, c *nudge.Contact, in Input, now time.Time, opt Options) *Transition {
	r := newRun(j, en, c, now, opt)
	switch in.Kind {
	case InputEnter:
		r.from(firstID(j))
	case InputEvent:
		s := j.Step(en.StepID)
		if s == nil || s.Kind != journey.KindWaitFor {
			r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonStepMissing, "Exited: step %s is not in version %d of the journey.", en.StepID, en.Version)
			break
		}
		name := ""
		if in.Event != nil {
			name = in.Event.Name
		}
		r.decide(s, "", nudge.OutcomeBranched, ReasonEventArrived, map[string]any{"event": name, "next": s.WaitFor.OnEvent},
			"%s arrived at step %s; going to %s.", name, s.ID, stepName(s.WaitFor.OnEvent))
		r.from(s.WaitFor.OnEvent)
	case InputWake:
		s := j.Step(en.StepID)
		switch {
		case s == nil:
			r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonStepMissing, "Exited: step %s is not in version %d of the journey.", en.StepID, en.Version)
		case s.Kind == journey.KindWaitFor:
			r.decide(s, "", nudge.OutcomeBranched, ReasonTimedOut, map[string]any{"event": s.WaitFor.Event, "timeout": s.WaitFor.Timeout.String(), "next": s.WaitFor.OnTimeout},
				"%s did not arrive within %s at step %s; going to %s.", s.WaitFor.Event, humanDuration(s.WaitFor.Timeout), s.ID, stepName(s.WaitFor.OnTimeout))
			r.from(s.WaitFor.OnTimeout)
		case s.Kind == journey.KindWait:
			r.from(s.Next())
		default:
			// A deferred send: try the step again; its expires still
			// counts from when it was first reached.
			if at := en.Steps[s.ID].At; !at.IsZero() {
				r.resume = s.ID
			}
			r.from(s.ID)
		}
	}
	return r.tr
}

func firstID(j *journey.Journey) string {
	if s := j.First(); s != nil {
		return s.ID
	}
	return ""
}

// run is one transition in progress.
type run struct {
	j   *journey.Journey
	en  *nudge.Enrollment
	c   *nudge.Contact
	now time.Time
	opt Options
	tr  *Transition
	// resume is a deferred send step tried again: its first run in this
	// transition continues the visit that deferred it (same time reached,
	// same visit number).
	resume string
}

func newRun(j *journey.Journey, en *nudge.Enrollment, c *nudge.Contact, now time.Time, opt Options) *run {
	cp := *en
	cp.Steps = maps.Clone(en.Steps)
	if cp.Steps == nil {
		cp.Steps = map[string]nudge.StepRecord{}
	}
	cp.UpdatedAt = now
	cc := c.Clone()
	return &run{j: j, en: &cp, c: cc, now: now, opt: opt,
		tr: &Transition{Enrollment: &cp, Contact: cc}}
}

func (r *run) vars(ev *nudge.Event) journey.Vars {
	if ev == nil {
		ev = r.en.Event
	}
	return journey.Vars{Contact: r.c, Event: ev, Journey: journeyVars(r.j, r.en)}
}

func journeyVars(j *journey.Journey, en *nudge.Enrollment) journey.JourneyVars {
	steps := make(map[string]journey.StepVars, len(en.Steps))
	for id, s := range en.Steps {
		steps[id] = journey.StepVars{MessageID: s.MessageID, At: s.At}
	}
	return journey.JourneyVars{ID: en.JourneyID, Version: en.Version, Key: en.Key, EnteredAt: en.EnteredAt, Steps: steps}
}

// decide records a decision about step s (nil: the enrollment as a whole).
func (r *run) decide(s *journey.Step, channel, outcome, reason string, details map[string]any, format string, args ...any) *nudge.Decision {
	d := &nudge.Decision{
		At:           r.now,
		ContactID:    r.en.ContactID,
		JourneyID:    r.en.JourneyID,
		Version:      r.en.Version,
		EnrollmentID: r.en.ID,
		Channel:      channel,
		Outcome:      outcome,
		Reason:       reason,
		Message:      fmt.Sprintf(format, args...),
		Details:      details,
	}
	if s != nil {
		d.StepID = s.ID
	}
	r.tr.Decisions = append(r.tr.Decisions, d)
	return d
}

// end ends the enrollment with an enrollment-level decision.
func (r *run) end(state, outcome, reason, format string, args ...any) {
	r.en.State = state
	r.en.EndedAt = r.now
	r.en.WakeAt = time.Time{}
	r.en.WaitEvent = ""
	d := r.decide(nil, "", outcome, reason, nil, format, args...)
	d.StepID = r.en.StepID
}

// wait makes the enrollment wait at step s until at.
func (r *run) wait(s *journey.Step, at time.Time, event string) {
	r.en.State = nudge.EnrollmentWaiting
	r.en.StepID = s.ID
	r.en.WakeAt = at
	r.en.WaitEvent = event
}

// from runs steps starting at id until the enrollment waits or ends.
func (r *run) from(id string) {
	for range MaxSteps {
		if id == "" {
			r.end(nudge.EnrollmentCompleted, nudge.OutcomeCompleted, ReasonCompleted, "Completed: reached the end of the journey.")
			return
		}
		s := r.j.Step(id)
		if s == nil {
			r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonStepMissing, "Exited: step %s is not in version %d of the journey.", id, r.en.Version)
			return
		}
		r.en.StepID = id
		rec := r.en.Steps[id]
		if id == r.resume && rec.Visits > 0 && !rec.At.IsZero() {
			r.resume = "" // the deferred visit goes on
		} else {
			rec = nudge.StepRecord{At: r.now, Visits: rec.Visits + 1}
		}
		r.en.Steps[id] = rec
		next, stop := r.step(s)
		if stop {
			return
		}
		id = next
	}
	r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonStepLimit, "Exited: more than %d steps ran at once (at step %s); the journey loops through waits that have already passed.", MaxSteps, id)
}

// step runs one step: it returns the next step's id, or stop when the
// enrollment waits or ended.
func (r *run) step(s *journey.Step) (next string, stop bool) {
	switch s.Kind {
	case journey.KindEmail:
		return r.send(s, nudge.ChannelEmail, s.Email.Template, "")
	case journey.KindSMS:
		return r.send(s, nudge.ChannelSMS, s.SMS.Template, string(s.SMS.Purpose))
	case journey.KindWebhook:
		return r.send(s, nudge.ChannelWebhook, "", "")
	case journey.KindWait:
		return r.waitStep(s)
	case journey.KindWaitFor:
		w := s.WaitFor
		at := r.now.Add(w.Timeout)
		r.wait(s, at, w.Event)
		details := map[string]any{"event": w.Event, "until": at, "timeout": w.Timeout.String()}
		if w.Match != nil {
			details["match"] = w.Match.Source
		}
		r.decide(s, "", nudge.OutcomeWaiting, ReasonWaitEvent, details,
			"Waiting for %s until %s (%s) at step %s.", w.Event, formatTime(at, time.UTC), humanDuration(w.Timeout), s.ID)
		return "", true
	case journey.KindBranch:
		return r.branch(s)
	case journey.KindSplit:
		next := s.SplitNext(r.en.ContactID)
		b := journey.Bucket(r.j.ID, s.ID, r.en.ContactID)
		path, weight := 0, 0
		for i, p := range s.Split {
			if b < p.Weight || i == len(s.Split)-1 {
				path, weight = i+1, p.Weight
				break
			}
			b -= p.Weight
		}
		r.decide(s, "", nudge.OutcomeBranched, ReasonSplit, map[string]any{"path": path, "weight": weight, "next": next},
			"Split at step %s: path %d (%d%%); going to %s.", s.ID, path, weight, stepName(next))
		return next, false
	case journey.KindUpdateContact:
		p := s.UpdateContact.Patch(r.en.ContactID)
		p.Apply(r.c)
		r.tr.Patches = append(r.tr.Patches, p)
		var sets []string
		set := map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(s.UpdateContact.Set)) {
			v := s.UpdateContact.Set[k]
			set[k] = v
			if v == nil {
				sets = append(sets, "removed "+k)
			} else {
				sets = append(sets, fmt.Sprintf("%s = %v", k, v))
			}
		}
		r.decide(s, "", nudge.OutcomeUpdated, ReasonContactUpdated, map[string]any{"set": set},
			"Updated the contact: %s (step %s).", strings.Join(sets, ", "), s.ID)
		return s.Next(), false
	case journey.KindExit:
		r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonExitStep, "Exited at step %s.", s.ID)
		return "", true
	}
	r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonStepMissing, "Exited: step %s has an unknown kind %q.", s.ID, s.Kind)
	return "", true
}

var channelNames = map[string]string{nudge.ChannelEmail: "email", nudge.ChannelSMS: "SMS", nudge.ChannelWebhook: "webhook"}

func (r *run) send(s *journey.Step, channel, template, purpose string) (string, bool) {
	what := fmt.Sprintf("%s '%s'", channelNames[channel], template)
	details := map[string]any{}
	if template != "" {
		details["template"] = template
	}
	if purpose != "" {
		details["purpose"] = purpose
	}
	if channel == nudge.ChannelWebhook {
		what = "webhook to " + s.Webhook.URL
		details["url"] = s.Webhook.URL
		if s.Webhook.SecretEnv != "" {
			details["secret_env"] = s.Webhook.SecretEnv
		}
	}
	switch {
	case channel == nudge.ChannelEmail && r.c.Email == "":
		r.decide(s, channel, nudge.OutcomeSkipped, ReasonNoAddress, details, "No email sent: the contact has no email address (step %s).", s.ID)
		return s.Next(), false
	case channel == nudge.ChannelSMS && r.c.Phone == "":
		r.decide(s, channel, nudge.OutcomeSkipped, ReasonNoAddress, details, "No SMS sent: the contact has no phone number (step %s).", s.ID)
		return s.Next(), false
	}
	if r.en.HeldOut {
		r.decide(s, channel, nudge.OutcomeHeldOut, ReasonHeldOut, details, "Held out: would have sent %s (step %s); the contact is in the journey's holdout.", what, s.ID)
		return s.Next(), false
	}
	pol := r.opt.Policy
	if pol == nil {
		pol = DefaultPolicy
	}
	var allowed *nudge.Decision
	if d := pol(&Send{Journey: r.j, Step: s, Enrollment: r.en, Contact: r.c, Channel: channel, Now: r.now, Reached: r.en.Steps[s.ID].At}); d != nil {
		if d.Outcome == nudge.OutcomeSent {
			allowed = d
		} else {
			d.At, d.ContactID, d.JourneyID, d.Version, d.EnrollmentID, d.StepID, d.Channel = r.now, r.en.ContactID, r.en.JourneyID, r.en.Version, r.en.ID, s.ID, channel
			if d.Details == nil {
				d.Details = map[string]any{}
			}
			for k, v := range details {
				if _, ok := d.Details[k]; !ok {
					d.Details[k] = v
				}
			}
			r.tr.Decisions = append(r.tr.Decisions, d)
			if d.Outcome == nudge.OutcomeDeferred {
				until, _ := d.Details["until"].(time.Time)
				if !until.After(r.now) {
					// A deferral to now or earlier would wake at once, again
					// and again: hold it at least a minute.
					until = r.now.Add(time.Minute)
				}
				r.wait(s, until, "")
				return "", true
			}
			return s.Next(), false
		}
	}
	// The visit number makes the key: a loop back to the step is a new
	// message, the same visit computed again (a retry, another engine)
	// is the same one.
	visit := r.en.Steps[s.ID].Visits
	key := r.en.ID + ":" + s.ID + ":v" + strconv.Itoa(visit)
	m := &nudge.Message{
		ID:             r.opt.NewID(),
		EnrollmentID:   r.en.ID,
		ContactID:      r.en.ContactID,
		JourneyID:      r.en.JourneyID,
		Version:        r.en.Version,
		StepID:         s.ID,
		Channel:        channel,
		Template:       template,
		Purpose:        purpose,
		Status:         nudge.MessageQueued,
		IdempotencyKey: key,
		AvailableAt:    r.now,
		CreatedAt:      r.now,
		UpdatedAt:      r.now,
	}
	if channel == nudge.ChannelWebhook {
		m.Details = map[string]any{"url": s.Webhook.URL}
		if s.Webhook.SecretEnv != "" {
			m.Details["secret_env"] = s.Webhook.SecretEnv
		}
	}
	r.tr.Messages = append(r.tr.Messages, m)
	r.en.Steps[s.ID] = nudge.StepRecord{At: r.now, MessageID: m.ID, Visits: visit}
	details["message_id"] = m.ID
	var d *nudge.Decision
	if channel == nudge.ChannelWebhook {
		d = r.decide(s, channel, nudge.OutcomeSent, ReasonQueued, details, "Queued %s (step %s).", what, s.ID)
	} else {
		d = r.decide(s, channel, nudge.OutcomeSent, ReasonQueued, details, "Sent %s (step %s).", what, s.ID)
	}
	if allowed != nil {
		// The guardrails' facts (zone, local time, consent) go with it.
		for k, v := range allowed.Details {
			if _, ok := details[k]; !ok {
				details[k] = v
			}
		}
		d.PolicyVersion = allowed.PolicyVersion
	}
	return s.Next(), false
}

func (r *run) waitStep(s *journey.Step) (string, bool) {
	w := s.Wait
	var (
		at      time.Time
		reason  string
		details = map[string]any{}
		say     string
	)
	switch {
	case w.For > 0:
		at, reason = r.now.Add(w.For), ReasonWaitTimer
		details["for"] = w.For.String()
		say = fmt.Sprintf("Waiting %s, until %s, at step %s.", humanDuration(w.For), formatTime(at, time.UTC), s.ID)
	case w.Until != nil:
		t, err := w.Until.EvalTime(r.vars(nil))
		if err != nil {
			r.conditionError(s, w.Until, err)
			return "", true
		}
		at, reason = t.UTC(), ReasonWaitUntil
		details["until_expr"] = w.Until.Source
		say = fmt.Sprintf("Waiting until %s (%s) at step %s.", formatTime(at, time.UTC), w.Until.Source, s.ID)
	case w.UntilLocal != nil:
		loc, tzNote := contactLocation(r.c)
		at, reason = nextLocal(r.now, loc, *w.UntilLocal, w.Weekdays), ReasonWaitLocalTime
		details["local_time"] = w.UntilLocal.String()
		details["timezone"] = loc.String()
		if len(w.Weekdays) > 0 {
			var ds []string
			for _, d := range w.Weekdays {
				ds = append(ds, d.String()[:3])
			}
			details["weekdays"] = ds
		}
		say = fmt.Sprintf("Waiting until %s%s at step %s.", formatTime(at, loc), tzNote, s.ID)
		if tzNote != "" {
			details["timezone_fallback"] = true
		}
	default:
		// Parse guarantees one kind; an empty wait waits for nothing.
		return s.Next(), false
	}
	details["until"] = at
	if !at.After(r.now) {
		r.decide(s, "", nudge.OutcomeSkipped, ReasonWaitPassed, details, "Did not wait at step %s: %s has already passed.", s.ID, formatTime(at, time.UTC))
		return s.Next(), false
	}
	r.wait(s, at, "")
	r.decide(s, "", nudge.OutcomeWaiting, reason, details, "%s", say)
	return "", true
}

func (r *run) branch(s *journey.Step) (string, bool) {
	v := r.vars(nil)
	for i, c := range s.Branch.Cases {
		ok, err := c.If.EvalBool(v)
		if err != nil {
			// Taken as false, loudly: a missing attribute usually means
			// "not yet", and the decision log says so.
			r.decide(s, "", nudge.OutcomeSkipped, ReasonConditionError, map[string]any{"case": i + 1, "condition": c.If.Source, "error": err.Error()},
				"Branch at step %s: case %d (%s) could not be evaluated, taken as false: %v.", s.ID, i+1, c.If.Source, err)
			continue
		}
		if ok {
			r.decide(s, "", nudge.OutcomeBranched, ReasonBranchCase, map[string]any{"case": i + 1, "condition": c.If.Source, "next": c.Then},
				"Branch at step %s: case %d (%s) is true; going to %s.", s.ID, i+1, c.If.Source, stepName(c.Then))
			return c.Then, false
		}
	}
	r.decide(s, "", nudge.OutcomeBranched, ReasonBranchElse, map[string]any{"next": s.Branch.Else},
		"Branch at step %s: no case is true; going to %s.", s.ID, stepName(s.Branch.Else))
	return s.Branch.Else, false
}

// conditionError ends the enrollment because a value a step needs could
// not be computed.
func (r *run) conditionError(s *journey.Step, e *journey.Expr, err error) {
	r.decide(s, "", nudge.OutcomeSkipped, ReasonConditionError, map[string]any{"condition": e.Source, "error": err.Error()},
		"Step %s could not run: %s could not be evaluated: %v.", s.ID, e.Source, err)
	r.end(nudge.EnrollmentExited, nudge.OutcomeExited, ReasonConditionError, "Exited at step %s: a condition could not be evaluated.", s.ID)
}

func stepName(id string) string {
	if id == "" {
		return "the end"
	}
	return "step " + id
}
