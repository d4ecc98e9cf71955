package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
)

// Recheck is the guardrails' last word on a queued message, asked right
// before it is handed to a provider, including after a deferral or a
// retry: a contact who converted, left the journey, opted out or was
// suppressed since the message was queued gets nothing. RecheckMany asks
// it for a delivery worker's claimed batch at once.
//
// It is not ok when the message's enrollment converted (goal_met) or was
// ended by an exit rule (exit_rule) or an erasure (contact_erased) — an
// enrollment that completed, moved on, or reached an exit step still lets
// its queued message go — or when the journey's goal condition or an exit
// rule is now true for c. For email and SMS, suppression and consent are
// then checked again with the policy in force (reasons suppressed_*,
// opted_out, no_consent_*), and an SMS step paused on its opt-out rate
// since stops its texts (step_paused_optout_rate); quiet hours, caps and
// priority were decided
// when the message was queued and are not applied again. A lookup that
// fails is not ok (consent_unavailable): nothing is sent on missing facts.
//
// Every not-ok answer is recorded as a decision (skipped, with the reason).
func (e *Engine) Recheck(ctx context.Context, m *nudge.Message, c *nudge.Contact) (ok bool, reason string) {
	now := e.clock.Now()
	d := e.recheck(ctx, m, c, &dispatchFacts{}, now)
	if d == nil {
		return true, ""
	}
	e.recordDispatch(ctx, []*nudge.Decision{dispatchDecision(d, m, now)})
	return false, d.Reason
}

// RecheckMany is Recheck for a batch (delivery's Config.Recheck): it reads
// the facts of all of ms at once (the consent and suppressions of their
// contacts, the policy, the paused steps) and answers for each message, in
// the order of ms, the reason it may not go, or "" when it may. contacts
// holds the messages' contacts by id (one absent or nil was erased), and
// enrollments their enrollments as just read (one absent was erased); nil
// enrollments are read here. The answers, and the decisions recorded for
// the messages stopped (in one commit), are Recheck's for each message.
func (e *Engine) RecheckMany(ctx context.Context, ms []*nudge.Message, contacts map[string]*nudge.Contact, enrollments map[string]*nudge.Enrollment) []string {
	now := e.clock.Now()
	f := e.readDispatchFacts(ctx, ms, contacts, enrollments)
	reasons := make([]string, len(ms))
	var ds []*nudge.Decision
	for i, m := range ms {
		if d := e.recheck(ctx, m, contacts[m.ContactID], f, now); d != nil {
			ds = append(ds, dispatchDecision(d, m, now))
			reasons[i] = d.Reason
		}
	}
	e.recordDispatch(ctx, ds)
	return reasons
}

// dispatchDecision completes the decision that stops m.
func dispatchDecision(d *nudge.Decision, m *nudge.Message, now time.Time) *nudge.Decision {
	d.At, d.ContactID, d.JourneyID, d.Version = now, m.ContactID, m.JourneyID, m.Version
	d.EnrollmentID, d.StepID, d.Channel, d.Outcome = m.EnrollmentID, m.StepID, m.Channel, nudge.OutcomeSkipped
	if d.Details == nil {
		d.Details = map[string]any{}
	}
	d.Details["message_id"] = m.ID
	d.Details["stage"] = "dispatch"
	return d
}

// recordDispatch records the re-check's decisions. The messages do not go
// either way; a failure loses only their explanation.
func (e *Engine) recordDispatch(ctx context.Context, ds []*nudge.Decision) {
	if len(ds) == 0 {
		return
	}
	if err := e.store.EngineCommit(ctx, &nudge.EngineCommit{Decisions: ds}, ds[0].At); err != nil {
		for _, d := range ds {
			e.log.ErrorContext(ctx, "engine: the dispatch re-check's decision could not be recorded", "message_id", d.Details["message_id"], "reason", d.Reason, "err", err)
		}
	}
}

// dispatchFacts are what the re-check reads of the store. The zero value
// reads them message by message (Recheck); readDispatchFacts reads a
// batch's at once (RecheckMany).
type dispatchFacts struct {
	bulk                          bool
	enrollments                   map[string]*nudge.Enrollment
	consent                       map[string][]*nudge.ConsentState
	supp                          map[string][]*nudge.Suppression
	pauses                        map[pauseKey]*nudge.StepPause
	ws                            *policy.Policy
	version                       int64
	enErr, consErr, suppErr, pErr error
	polErr, pauseErr              error
}

// readDispatchFacts reads the facts the re-check of ms needs, each kind in
// one query. A read that fails makes each message that needs it not ok
// (consent_unavailable), as it would one at a time.
func (e *Engine) readDispatchFacts(ctx context.Context, ms []*nudge.Message, contacts map[string]*nudge.Contact, enrollments map[string]*nudge.Enrollment) *dispatchFacts {
	f := &dispatchFacts{bulk: true, enrollments: enrollments}
	var enIDs, cIDs []string
	var cs []*nudge.Contact
	seen := map[string]bool{}
	guarded, sms := false, false
	for _, m := range ms {
		if m.EnrollmentID != "" {
			enIDs = append(enIDs, m.EnrollmentID)
		}
		if m.Channel != nudge.ChannelSMS && m.Channel != nudge.ChannelEmail {
			continue
		}
		guarded = true
		sms = sms || (m.Channel == nudge.ChannelSMS && m.JourneyID != "")
		if c := contacts[m.ContactID]; c != nil && !seen[c.ID] {
			seen[c.ID] = true
			cIDs, cs = append(cIDs, c.ID), append(cs, c)
		}
	}
	if len(enIDs) > 0 && enrollments == nil {
		f.enrollments, f.enErr = e.store.EnrollmentGetMany(ctx, enIDs)
	}
	if !guarded {
		return f
	}
	f.ws, f.version, f.polErr = e.currentPolicy(ctx)
	if len(cs) > 0 {
		f.consent, f.consErr = e.consentOf(ctx, cIDs, cs)
		f.supp, f.suppErr = e.store.SuppressionsFor(ctx, cs)
	}
	if sms {
		f.pauses, f.pauseErr = e.pauses(ctx)
	}
	return f
}

func (f *dispatchFacts) enrollment(ctx context.Context, e *Engine, id string) (*nudge.Enrollment, error) {
	if !f.bulk {
		return e.store.EnrollmentGet(ctx, id)
	}
	if f.enErr != nil {
		return nil, f.enErr
	}
	if en := f.enrollments[id]; en != nil {
		return en, nil
	}
	return nil, nudge.Errorf(nudge.ENOTFOUND, "enrollment %q not found", id)
}

func (f *dispatchFacts) policy(ctx context.Context, e *Engine) (*policy.Policy, int64, error) {
	if !f.bulk {
		return e.currentPolicy(ctx)
	}
	return f.ws, f.version, f.polErr
}

func (f *dispatchFacts) consentOf(ctx context.Context, e *Engine, c *nudge.Contact) ([]*nudge.ConsentState, error) {
	if !f.bulk {
		consent, err := e.store.ConsentListMany(ctx, []string{c.ID})
		return consent[c.ID], err
	}
	return f.consent[c.ID], f.consErr
}

func (f *dispatchFacts) suppressionsOf(ctx context.Context, e *Engine, c *nudge.Contact) ([]*nudge.Suppression, error) {
	if !f.bulk {
		supp, err := e.store.SuppressionsFor(ctx, []*nudge.Contact{c})
		return supp[c.ID], err
	}
	return f.supp[c.ID], f.suppErr
}

func (f *dispatchFacts) pause(ctx context.Context, e *Engine, m *nudge.Message) (*nudge.StepPause, error) {
	if !f.bulk || m.Channel != nudge.ChannelSMS || m.JourneyID == "" {
		return e.stepPause(ctx, m)
	}
	return f.pauses[pauseKey{m.JourneyID, m.StepID}], f.pauseErr
}

// recheck returns the decision that stops m at now, or nil when it may go.
func (e *Engine) recheck(ctx context.Context, m *nudge.Message, c *nudge.Contact, f *dispatchFacts, now time.Time) *nudge.Decision {
	what := channelWord(m.Channel)
	unavailable := func(err error) *nudge.Decision {
		e.log.ErrorContext(ctx, "engine: the dispatch re-check could not read its facts; the message is not sent", "message_id", m.ID, "err", err)
		return &nudge.Decision{
			Reason:  policy.ReasonConsentUnavailable,
			Message: fmt.Sprintf("Not sent: the checks before sending the %s could not be made (%v); nothing is sent without them.", what, err),
			Details: map[string]any{"error": err.Error()},
		}
	}
	if c == nil {
		return &nudge.Decision{Reason: ReasonContactErased, Message: fmt.Sprintf("Not sent: the contact was erased after the %s was queued.", what)}
	}
	var (
		j  *journey.Journey
		en *nudge.Enrollment
	)
	if m.EnrollmentID != "" {
		var err error
		en, err = f.enrollment(ctx, e, m.EnrollmentID)
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			// Only an erasure deletes enrollments.
			return &nudge.Decision{Reason: ReasonContactErased, Message: fmt.Sprintf("Not sent: the %s's enrollment no longer exists (the contact was erased).", what)}
		}
		if err != nil {
			return unavailable(fmt.Errorf("read the enrollment: %w", err))
		}
		if j, _, err = e.version(ctx, en.JourneyID, en.Version); err != nil {
			return unavailable(fmt.Errorf("read journey %s version %d: %w", en.JourneyID, en.Version, err))
		}
		switch en.State {
		case nudge.EnrollmentConverted:
			return goalDecision(j, what, "")
		case nudge.EnrollmentExited:
			end, err := e.endReason(ctx, en)
			if err != nil {
				return unavailable(fmt.Errorf("read the enrollment's decisions: %w", err))
			}
			switch end.Reason {
			case ReasonExitRule:
				rule := "an exit rule"
				if x, ok := end.Details["condition"].(string); ok && x != "" {
					rule = "exit rule " + x
				}
				return &nudge.Decision{Reason: ReasonExitRule, Details: map[string]any{"condition": end.Details["condition"]},
					Message: fmt.Sprintf("Not sent: the contact left the journey (%s) after the %s was queued.", rule, what)}
			case ReasonContactErased:
				return &nudge.Decision{Reason: ReasonContactErased, Message: fmt.Sprintf("Not sent: the contact was erased after the %s was queued.", what)}
			}
			// An exit step (or a guard) ended the enrollment as its steps
			// went: like completing, it leaves queued messages to go.
		}
		if met, why := goalMet(j, en, c, nil, now); met {
			return goalDecision(j, what, why)
		}
		if x := exitRule(j, en, c); x != nil {
			return &nudge.Decision{Reason: ReasonExitRule, Details: map[string]any{"condition": x.Source},
				Message: fmt.Sprintf("Not sent: the contact left the journey (exit rule %s) after the %s was queued.", x.Source, what)}
		}
	}
	if m.Channel != nudge.ChannelSMS && m.Channel != nudge.ChannelEmail {
		return nil // webhooks are the journey's own calls: no consent applies
	}
	ws, version, err := f.policy(ctx, e)
	if err != nil {
		return unavailable(err)
	}
	p := ws
	if j != nil {
		if st := j.Step(m.StepID); st != nil {
			p, _ = e.stepPolicy(ws, version, j, en.Version, st)
		}
	}
	consent, err := f.consentOf(ctx, e, c)
	if err != nil {
		return unavailable(fmt.Errorf("read consent: %w", err))
	}
	supp, err := f.suppressionsOf(ctx, e, c)
	if err != nil {
		return unavailable(fmt.Errorf("read suppressions: %w", err))
	}
	facts := &policy.Facts{
		Channel: m.Channel, Purpose: m.Purpose, Journey: m.JourneyID, Step: m.StepID, Template: m.Template,
		MessageKey: m.EnrollmentID + ":" + m.StepID, Contact: c, Consent: consent,
	}
	for _, s := range supp {
		facts.Suppressions = append(facts.Suppressions, policy.Suppression{Channel: s.Channel, Address: s.AddressMasked, Kind: s.Reason, Source: s.Source, At: s.CreatedAt})
	}
	if facts.Paused, err = f.pause(ctx, e, m); err != nil {
		return unavailable(err)
	}
	// Suppression and consent are the policy's first rules: when either
	// stops the send, Evaluate says so before any later rule is asked.
	pd := p.Evaluate(facts, now)
	if pd.Allowed() || !dispatchReason(pd.Reason) {
		return nil
	}
	rec := pd.Record(version)
	rec.Message = dispatchSentence(&pd, m, what)
	return rec
}

// dispatchReason reports whether a policy reason is one the re-check
// applies: suppression and consent.
func dispatchReason(r string) bool {
	switch r {
	case policy.ReasonSuppressedEmail, policy.ReasonSuppressedPhone, policy.ReasonSuppressedContact,
		policy.ReasonOptedOut, policy.ReasonNoConsentSMS, policy.ReasonNoConsentEmail, policy.ReasonConsentUnavailable,
		policy.ReasonStepPausedOptOutRate:
		return true
	}
	return false
}

// dispatchSentence says why the policy stopped a queued message.
func dispatchSentence(pd *policy.Decision, m *nudge.Message, what string) string {
	switch pd.Reason {
	case policy.ReasonSuppressedEmail, policy.ReasonSuppressedPhone, policy.ReasonSuppressedContact:
		who := "the contact"
		switch pd.Reason {
		case policy.ReasonSuppressedPhone:
			who = "the phone number"
		case policy.ReasonSuppressedEmail:
			who = "the email address"
		}
		kind := ""
		if s := pd.Used.Suppression; s != nil {
			kind = " (" + s.Kind + ")"
		}
		return fmt.Sprintf("Not sent: %s was suppressed%s after the %s was queued.", who, kind, what)
	case policy.ReasonOptedOut:
		src := ""
		if st := pd.Used.Consent; st != nil && st.Source != "" {
			src = " (" + st.Source + ")"
		}
		return fmt.Sprintf("Not sent: the contact opted out%s after the %s was queued.", src, what)
	default:
		return fmt.Sprintf("Not sent: at dispatch, %s", pd.Sentence)
	}
}

// goalDecision stops a message of an enrollment whose goal was met; why is
// how, when the re-check found it ("" when the enrollment converted).
func goalDecision(j *journey.Journey, what, why string) *nudge.Decision {
	goal := why
	if goal == "" && j.Goal != nil {
		switch {
		case j.Goal.Event != "":
			goal = j.Goal.Event
		case j.Goal.Condition != nil:
			goal = j.Goal.Condition.Source
		}
	}
	msg := fmt.Sprintf("Not sent: the contact converted after the %s was queued.", what)
	if goal != "" {
		msg = fmt.Sprintf("Not sent: the contact converted (%s) after the %s was queued.", goal, what)
	}
	return &nudge.Decision{Reason: ReasonGoalMet, Message: msg, Details: map[string]any{"goal": goal}}
}

// endReason is the decision that ended an exited enrollment (the last of
// its exited decisions); an empty one when there is none on record.
func (e *Engine) endReason(ctx context.Context, en *nudge.Enrollment) (*nudge.Decision, error) {
	var end *nudge.Decision
	var after int64
	for {
		ds, err := e.store.DecisionList(ctx, &nudge.DecisionListParams{EnrollmentID: en.ID, AfterID: after, Limit: 10000})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Outcome == nudge.OutcomeExited {
				end = d
			}
		}
		if len(ds) < 10000 {
			break
		}
		after = ds[len(ds)-1].ID
	}
	if end == nil {
		// No record of why: read it as an exit rule, the strict way.
		return &nudge.Decision{Reason: ReasonExitRule}, nil
	}
	return end, nil
}

// channelWord names a channel in a sentence.
func channelWord(ch string) string {
	switch ch {
	case nudge.ChannelSMS:
		return "SMS"
	case nudge.ChannelEmail:
		return "email"
	}
	return ch + " message"
}
