package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
)

// guard is the guardrails of one claimed batch: the policy in force and
// the facts the policy needs about the batch's contacts, read in bulk once
// (suppressions, consent, recent messages, the contacts' other
// enrollments), then kept up to date as the batch's own transitions queue
// messages and defer sends, so that two sends of one batch cannot both
// pass a 1-per-24h cap. Its decide method is the engine's Policy: every
// email and SMS passes policy.Evaluate; nothing bypasses it.
type guard struct {
	e       *Engine
	ctx     context.Context
	ws      *policy.Policy
	version int64
	// err is a failed lookup of facts: every send of the batch is deferred
	// (consent_unavailable), never sent on missing facts.
	err   error
	facts map[string]*contactFacts
	// batch holds the due enrollments this batch advances and done those
	// it advanced already: one not yet advanced is not a competitor (it is
	// decided after, in priority order, and sees this one's outcome).
	batch, done map[string]bool
	undo        []func()
	paused      map[pauseKey]*nudge.StepPause // steps paused on their opt-out rate (pause.go)
}

// contactFacts are what the guard knows of one contact.
type contactFacts struct {
	consent     []*nudge.ConsentState
	supp        []policy.Suppression
	recent      []policy.Sent
	enrs        []*nudge.Enrollment // all of the contact's enrollments, as the batch leaves them
	engaged     []policy.Engaged
	engagedRead bool
}

// newGuard reads the facts of the contacts cs (by id; nil entries are
// erased contacts) at now. enrs, when not nil, are the contacts'
// enrollments already read (the inbox lists them anyway); else they are
// read here.
func (e *Engine) newGuard(ctx context.Context, now time.Time, cs map[string]*nudge.Contact, enrs map[string][]*nudge.Enrollment) *guard {
	g := &guard{e: e, ctx: ctx, facts: make(map[string]*contactFacts, len(cs)), batch: map[string]bool{}, done: map[string]bool{}}
	var err error
	g.ws, g.version, err = e.currentPolicy(ctx)
	if err != nil {
		g.fail(err)
	}
	if g.paused, err = e.pauses(ctx); err != nil {
		g.fail(err)
	}
	list := make([]*nudge.Contact, 0, len(cs))
	ids := make([]string, 0, len(cs))
	for id, c := range cs {
		if c != nil {
			list = append(list, c)
			ids = append(ids, id)
			g.facts[id] = &contactFacts{}
		}
	}
	if len(ids) == 0 {
		return g
	}
	slices.Sort(ids)
	since := now.Add(-e.recentWindow(g.ws))
	var (
		consent map[string][]*nudge.ConsentState
		supp    map[string][]*nudge.Suppression
		recent  map[string][]*nudge.Message
		live    map[string][]*nudge.Enrollment
	)
	errs := make([]error, 4)
	parallel(4, func(i int) error {
		switch i {
		case 0:
			consent, errs[0] = e.consentOf(ctx, ids, list)
		case 1:
			supp, errs[1] = e.store.SuppressionsFor(ctx, list)
		case 2:
			recent, errs[2] = e.store.MessageRecent(ctx, ids, since)
		case 3:
			if enrs == nil {
				live, errs[3] = e.store.EnrollmentListLive(ctx, ids)
			}
		}
		return nil
	})
	for i, what := range []string{"consent", "suppressions", "recent messages", "enrollments"} {
		if errs[i] != nil {
			g.fail(fmt.Errorf("read %s: %w", what, errs[i]))
		}
	}
	if enrs == nil {
		enrs = live
	}
	for id, f := range g.facts {
		f.consent = consent[id]
		for _, s := range supp[id] {
			f.supp = append(f.supp, policy.Suppression{Channel: s.Channel, Address: s.AddressMasked, Kind: s.Reason, Source: s.Source, At: s.CreatedAt})
		}
		for _, m := range recent[id] {
			f.recent = append(f.recent, sentOf(m))
		}
		f.enrs = enrs[id]
	}
	return g
}

// consentForContacts is a store that reads the consent of contacts the
// caller holds, at their addresses, without reading those again
// (*sqlite.DB); the guardrails and the dispatch re-check have just read
// the contacts.
type consentForContacts interface {
	ConsentListFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.ConsentState, error)
}

// consentOf reads the consent of contacts cs, whose ids are ids, by
// contact id: at the addresses of cs where the store can
// (consentForContacts), else as the store has the contacts.
func (e *Engine) consentOf(ctx context.Context, ids []string, cs []*nudge.Contact) (map[string][]*nudge.ConsentState, error) {
	if cf, ok := e.store.(consentForContacts); ok {
		return cf.ConsentListFor(ctx, cs)
	}
	return e.store.ConsentListMany(ctx, ids)
}

func (g *guard) fail(err error) {
	if g.err == nil {
		g.err = err
		g.e.log.ErrorContext(g.ctx, "engine: the guardrails' facts could not be read; the batch's sends are deferred", "err", err)
	}
}

// sentOf is a stored message as the caps count it.
func sentOf(m *nudge.Message) policy.Sent {
	at := m.AvailableAt
	if at.IsZero() {
		at = m.CreatedAt
	}
	return policy.Sent{
		ID: m.ID, At: at, Channel: m.Channel, Journey: m.JourneyID, Template: m.Template,
		Transactional: m.Purpose == policy.PurposeTransactional,
		InFlight:      m.Status == nudge.MessageQueued || m.Status == nudge.MessageSending,
	}
}

// mark and rollback undo what the guard learnt from transitions that were
// computed but not kept (an inbox item left for the next round).
func (g *guard) mark() int { return len(g.undo) }

func (g *guard) rollback(m int) {
	for i := len(g.undo) - 1; i >= m; i-- {
		g.undo[i]()
	}
	g.undo = g.undo[:m]
}

// setEnrollments gives the contact's enrollments as the batch leaves them.
func (g *guard) setEnrollments(contactID string, enrs []*nudge.Enrollment) {
	if f := g.facts[contactID]; f != nil {
		old := f.enrs
		f.enrs = enrs
		g.undo = append(g.undo, func() { f.enrs = old })
	}
}

// advanced notes a due enrollment's new state.
func (g *guard) advanced(en *nudge.Enrollment) {
	g.done[en.ID] = true
	f := g.facts[en.ContactID]
	if f == nil {
		return
	}
	i := slices.IndexFunc(f.enrs, func(x *nudge.Enrollment) bool { return x.ID == en.ID })
	if i < 0 {
		f.enrs = append(f.enrs, en)
		return
	}
	enrs := slices.Clone(f.enrs)
	enrs[i] = en
	f.enrs = enrs
}

// stamp records the policy version in force on every decision of c.
func (g *guard) stamp(c *nudge.EngineCommit) {
	for _, d := range c.Decisions {
		if d.PolicyVersion == 0 {
			d.PolicyVersion = g.version
		}
	}
}

// priority is a journey's priority as the policy sees it.
func (g *guard) priority(j *journey.Journey) int {
	if p, ok := g.ws.Priorities[j.ID]; ok {
		return p
	}
	return j.Priority
}

// decide is the engine's Policy for the batch.
func (g *guard) decide(s *Send) *nudge.Decision {
	if s.Channel != nudge.ChannelSMS && s.Channel != nudge.ChannelEmail {
		return nil // webhooks are the journey's own calls, not messages to the contact
	}
	p, problem := g.e.stepPolicy(g.ws, g.version, s.Journey, s.Enrollment.Version, s.Step)
	f := g.facts[s.Contact.ID]
	if f == nil {
		// Not among the batch's contacts: nothing is known, nothing is sent.
		f = &contactFacts{}
		g.facts[s.Contact.ID] = f
		g.fail(fmt.Errorf("no facts were read for contact %s", s.Contact.ID))
	}
	facts, d := g.facts1(p, f, s)
	if d != nil {
		d.PolicyVersion = g.version
		return d
	}
	pd := p.Evaluate(facts, s.Now)
	rec := pd.Record(g.version)
	if problem != "" {
		rec.Details["policy_problem"] = problem
	}
	if pd.Allowed() {
		old := f.recent
		f.recent = append(slices.Clip(f.recent), policy.Sent{
			At: s.Now, Channel: s.Channel, Journey: s.Journey.ID, Template: facts.Template,
			Transactional: facts.Transactional(), InFlight: true,
		})
		g.undo = append(g.undo, func() { f.recent = old })
	}
	return rec
}

// facts1 gathers one send's facts; a decision instead when a value the
// step needs (its expires or deadline) cannot be computed.
func (g *guard) facts1(p *policy.Policy, f *contactFacts, s *Send) (*policy.Facts, *nudge.Decision) {
	st, j, en := s.Step, s.Journey, s.Enrollment
	facts := &policy.Facts{
		Channel: s.Channel, Journey: j.ID, Priority: j.Priority, Step: st.ID,
		MessageKey: en.ID + ":" + st.ID, OnCap: st.OnCap,
		Contact: s.Contact, Consent: f.consent, ConsentErr: g.err,
		Suppressions: f.supp, Recent: f.recent, Paused: g.paused[pauseKey{j.ID, st.ID}],
	}
	switch {
	case st.SMS != nil:
		facts.Template, facts.Purpose = st.SMS.Template, string(st.SMS.Purpose)
	case st.Email != nil:
		facts.Template = st.Email.Template
	}
	// The variables, built only for an expression: most sends have none.
	vars := func() journey.Vars {
		return journey.Vars{Contact: s.Contact, Event: en.Event, Journey: journeyVars(j, en)}
	}
	if x := st.Expires; x != nil {
		if x.At != nil {
			t, err := x.At.EvalTime(vars())
			if err != nil {
				return nil, conditionDecision(st, "expires", x.At, err)
			}
			facts.Expires = t
		} else {
			facts.Expires = cmp.Or(s.Reached, s.Now).Add(x.After)
		}
	}
	if st.Deadline != nil {
		t, err := st.Deadline.EvalTime(vars())
		if err != nil {
			return nil, conditionDecision(st, "deadline", st.Deadline, err)
		}
		facts.Deadline = t
	}
	if p.SMS.Engagement != nil && s.Channel == nudge.ChannelSMS && !facts.Transactional() {
		facts.Engagement = g.engagement(f, s.Contact.ID, p.SMS.Engagement)
	}
	for _, o := range f.enrs {
		if o.ID == en.ID || !o.Live() || o.WakeAt.IsZero() || g.batch[o.ID] && !g.done[o.ID] {
			continue
		}
		oj, _, err := g.e.version(g.ctx, o.JourneyID, o.Version)
		if err != nil {
			continue
		}
		os := oj.Step(o.StepID)
		if os == nil {
			continue
		}
		pm := policy.Pending{Journey: oj.ID, Priority: oj.Priority, At: o.WakeAt}
		switch {
		case os.SMS != nil:
			pm.Channel, pm.Template = nudge.ChannelSMS, os.SMS.Template
		case os.Email != nil:
			pm.Channel, pm.Template = nudge.ChannelEmail, os.Email.Template
		default:
			continue // waiting, not wanting to send
		}
		facts.Competing = append(facts.Competing, pm)
	}
	return facts, nil
}

// conditionDecision skips a send whose expires or deadline cannot be
// computed: without it, the message could go late.
func conditionDecision(st *journey.Step, what string, x *journey.Expr, err error) *nudge.Decision {
	return &nudge.Decision{
		Outcome: nudge.OutcomeSkipped, Reason: ReasonConditionError,
		Message: fmt.Sprintf("Skipped step %s: its %s (%s) could not be evaluated: %v; it is never sent without it.", st.ID, what, x.Source, err),
		Details: map[string]any{"condition": x.Source, "error": err.Error(), "field": what},
	}
}

// engagement reads the contact's engagement events once, when a policy
// requires engagement before a marketing SMS (the only fact read per
// contact, and only then). A failed read counts as no engagement: the
// send is skipped, never sent on a guess.
func (g *guard) engagement(f *contactFacts, contactID string, rule *policy.Engagement) []policy.Engaged {
	if f.engagedRead {
		return f.engaged
	}
	f.engagedRead = true
	for _, name := range rule.Events {
		page, err := g.e.store.EventList(g.ctx, &nudge.EventListParams{ContactID: contactID, Name: name, Limit: 1000})
		if err != nil {
			g.e.log.ErrorContext(g.ctx, "engine: engagement events could not be read; counted as none", "contact_id", contactID, "err", err)
			return nil
		}
		for _, ev := range page.Events {
			f.engaged = append(f.engaged, policy.Engaged{Event: ev.Name, At: ev.Timestamp})
		}
	}
	return f.engaged
}

// DefaultPolicy is the Policy of Advance and Enter when Options has none:
// the shipped policy (policy.Default) on what the contact alone says, with
// no consent on record, so no marketing SMS goes out, and no earlier
// messages. It exists so that no caller can run sends past no guardrails.
func DefaultPolicy(s *Send) *nudge.Decision {
	if s.Channel != nudge.ChannelSMS && s.Channel != nudge.ChannelEmail {
		return nil
	}
	g := &guard{ws: policy.Default(), e: &Engine{}}
	facts, d := g.facts1(g.ws, &contactFacts{engagedRead: true}, s)
	if d != nil {
		return d
	}
	pd := g.ws.Evaluate(facts, s.Now)
	return pd.Record(0)
}

// currentPolicy is the workspace policy in force: Config.Policy when set,
// else the store's latest version (parsed once per version), else
// policy.Default() as version 0.
func (e *Engine) currentPolicy(ctx context.Context) (*policy.Policy, int64, error) {
	if e.fixed != nil {
		return e.fixed, e.fixed.Version, nil
	}
	v, err := e.store.PolicyGet(ctx, 0)
	e.pmu.Lock()
	defer e.pmu.Unlock()
	if e.def == nil {
		e.def = policy.Default()
	}
	switch {
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		return e.def, 0, nil
	case err != nil:
		// Keep to the strict default; the batch's sends wait (g.err).
		return e.def, 0, fmt.Errorf("read the policy: %w", err)
	}
	if e.pol != nil && e.pol.Version == v.Version {
		return e.pol, v.Version, nil
	}
	p, err := policy.Parse(fmt.Sprintf("policy@%d", v.Version), v.Source)
	if err != nil {
		e.log.ErrorContext(ctx, "engine: the stored policy does not parse; the shipped default is in force", "policy_version", v.Version, "err", err)
		return e.def, 0, nil
	}
	p.Version = v.Version
	e.pol = p
	return p, v.Version, nil
}

type stepKey struct {
	version  int64
	journey  string
	jversion int64
	step     string
}

type stepPolicy struct {
	p       *policy.Policy
	problem string
}

// stepPolicy is the workspace policy ws tightened by the journey's and the
// step's policy blocks, cached. A block that would loosen ws (written for
// an earlier workspace policy) is left out and named in problem: the
// workspace policy still holds.
func (e *Engine) stepPolicy(ws *policy.Policy, version int64, j *journey.Journey, jversion int64, s *journey.Step) (*policy.Policy, string) {
	if j.Policy == nil && s.Policy == nil {
		return ws, ""
	}
	k := stepKey{version, j.ID, jversion, s.ID}
	e.pmu.Lock()
	sp, ok := e.steps[k]
	e.pmu.Unlock()
	if ok {
		return sp.p, sp.problem
	}
	p, err := j.PolicyFor(ws, s)
	if err != nil {
		sp.problem = err.Error()
		// Keep what tightens: the journey's block alone, else nothing.
		if jp, err2 := j.PolicyFor(ws, nil); err2 == nil {
			p = jp
		} else {
			p = ws
		}
		var ve *policy.ValidationError
		if !errors.As(err, &ve) {
			e.log.Error("engine: a journey's policy block could not be applied", "journey_id", j.ID, "step_id", s.ID, "err", err)
		}
	}
	sp.p = p
	e.pmu.Lock()
	if e.steps == nil {
		e.steps = map[stepKey]stepPolicy{}
	}
	e.steps[k] = sp
	e.pmu.Unlock()
	return sp.p, sp.problem
}

// recentWindow is how far back the messages that fill caps are read: the
// longest cap window of the workspace policy and of the loaded journeys'
// policy blocks (calendar days plus a day for time zones).
func (e *Engine) recentWindow(ws *policy.Policy) time.Duration {
	w := 24 * time.Hour
	add := func(cs []policy.Cap) {
		for _, c := range cs {
			w = max(w, c.Per, time.Duration(c.Days+1)*24*time.Hour)
		}
	}
	add(ws.Caps)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.journeys {
		for _, j := range l.versions {
			if j.Policy != nil {
				add(j.Policy.Caps)
			}
			for _, s := range j.Steps {
				if s.Policy != nil {
					add(s.Policy.Caps)
				}
			}
		}
	}
	return w
}
