package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// ProcessInbox claims a batch of inbox items and processes them, each
// contact's in Seq order: the contact's live enrollments first (goal met →
// converted, exit rule → exited, an awaited event → on_event), then the
// triggers of active journeys. It returns how many items it processed.
//
// The batch is grouped by contact: one read of the contacts and one list of
// each contact's enrollments serve all its items, evaluated one after the
// other on the state the previous one left, and everything commits in one
// EngineCommit that also deletes the items, so an item is processed exactly
// once. An item that would change an enrollment already changed in that
// commit waits for the next one (a round): one commit never holds two
// transitions of an enrollment from the same revision, whose updates would
// conflict and whose idempotency keys could collide. Most batches take one
// round. (A round's commit sets its enrollments' Rev to the stored one, as
// the stores document, so the next round updates them; a store that did
// not would make it conflict, and fall back as below.)
//
// If a round's commit fails (ECONFLICT: another process moved one of the
// contacts' enrollments, or consumed an item whose lease expired), its
// items and the rest are processed one by one on fresh state, each in its
// own commit. An item that fails otherwise is logged and left claimed, with
// its contact's later items: they are tried again when their lease expires.
func (e *Engine) ProcessInbox(ctx context.Context) (int, error) {
	n, _, err := e.processInbox(ctx)
	return n, err
}

// processInbox is ProcessInbox; more reports that the inbox may hold more
// work: the claim was full, or a commit changed contacts.
func (e *Engine) processInbox(ctx context.Context) (n int, more bool, err error) {
	items, err := e.store.InboxClaim(ctx, e.clock.Now(), e.batch, e.lease)
	if err != nil {
		return 0, false, fmt.Errorf("engine: claim inbox: %w", err)
	}
	if len(items) == 0 {
		return 0, false, nil
	}
	// The journeys are read after the claim, not before: a journey
	// published just before an event must see it, and what committed
	// before the claimed items did is visible now. (Read before, a publish,
	// then an event, both landing between the read and the claim, left the
	// event matched against the journeys as they were without it.) On an
	// error the items are retried when their claim expires.
	if err := e.Reload(ctx); err != nil {
		return 0, false, err
	}
	more = len(items) >= e.batch
	var (
		pending []*contactWork
		byID    = make(map[string]*contactWork, len(items))
		ids     = make([]string, 0, len(items))
	)
	for _, it := range items {
		w := byID[it.ContactID]
		if w == nil {
			w = &contactWork{id: it.ContactID}
			byID[it.ContactID] = w
			pending = append(pending, w)
			ids = append(ids, it.ContactID)
		}
		w.items = append(w.items, it)
	}
	for _, w := range pending {
		// Claims come in Seq order; keep each contact's so.
		slices.SortFunc(w.items, func(a, b *nudge.InboxItem) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	contacts, err := e.contacts(ctx, ids)
	if err != nil {
		return 0, more, fmt.Errorf("engine: read the contacts of inbox items: %w", err)
	}
	listErrs := make([]error, len(pending))
	parallel(len(pending), func(i int) error {
		w := pending[i]
		if w.c = contacts[w.id]; w.c != nil {
			w.enrs, listErrs[i] = e.contactEnrollments(ctx, w.id)
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return 0, more, err
	}
	ready := pending[:0]
	for i, w := range pending {
		if err := listErrs[i]; err != nil {
			e.log.ErrorContext(ctx, "engine: inbox items failed; they are retried when their claim expires", "contact_id", w.id, "items", len(w.items), "err", err)
			continue
		}
		ready = append(ready, w)
	}
	pending = ready
	// The guardrails' facts of every contact of the batch, read in bulk.
	cs := make(map[string]*nudge.Contact, len(pending))
	enrs := make(map[string][]*nudge.Enrollment, len(pending))
	for _, w := range pending {
		cs[w.id], enrs[w.id] = w.c, w.enrs
	}
	g := e.newGuard(ctx, e.clock.Now(), cs, enrs)

	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return n, more, err
		}
		now := e.clock.Now()
		round := &nudge.EngineCommit{}
		touched := map[string]bool{}
		var (
			took  []*nudge.InboxItem
			next  []*contactWork
			after []contactState
		)
		for _, w := range pending {
			st := contactState{w: w, c: w.c, enrs: w.enrs}
			k := 0
		items:
			for ; k < len(w.items); k++ {
				it := w.items[k]
				m := g.mark()
				c, st2, err := e.itemCommit(ctx, it, st, now, g)
				if err != nil {
					g.rollback(m)
					e.log.ErrorContext(ctx, "engine: inbox item failed; it is retried when its claim expires", "seq", it.Seq, "contact_id", it.ContactID, "err", err)
					w.items = nil // its later items wait for it
					break
				}
				for _, en := range c.Enrollments {
					if touched[en.ID] {
						g.rollback(m)
						break items
					}
				}
				g.stamp(c)
				for _, en := range c.Enrollments {
					touched[en.ID] = true
				}
				merge(round, c)
				took = append(took, it)
				st = st2
			}
			after = append(after, st)
			if k < len(w.items) {
				w.items = w.items[k:]
				next = append(next, w)
			}
		}
		if len(took) == 0 {
			break
		}
		err := e.store.EngineCommit(ctx, round, now)
		if err == nil {
			n += len(took)
			more = more || len(round.ContactPatches) > 0
			for _, st := range after {
				st.w.c, st.w.enrs = st.c, st.enrs
			}
			pending = next
			continue
		}
		if ctx.Err() != nil {
			return n, more, ctx.Err()
		}
		e.log.DebugContext(ctx, "engine: inbox batch did not commit; processing its items one by one", "items", len(took), "err", err)
		rest := took
		for _, w := range next {
			rest = append(rest, w.items...)
		}
		slices.SortFunc(rest, func(a, b *nudge.InboxItem) int { return cmp.Compare(a.Seq, b.Seq) })
		failed := map[string]bool{}
		for _, it := range rest {
			if err := ctx.Err(); err != nil {
				return n, more, err
			}
			if failed[it.ContactID] {
				continue
			}
			ok, patched, err := e.processItem(ctx, it)
			if err != nil {
				e.log.ErrorContext(ctx, "engine: inbox item failed; it is retried when its claim expires", "seq", it.Seq, "contact_id", it.ContactID, "err", err)
				failed[it.ContactID] = true
				continue
			}
			if ok {
				n++
				more = more || patched
			}
		}
		break
	}
	return n, more, nil
}

// contactWork is a contact's items of a claimed batch, and the state they
// are evaluated on: the contact (nil: erased meanwhile) and its enrollments.
type contactWork struct {
	id    string
	items []*nudge.InboxItem
	c     *nudge.Contact
	enrs  []*nudge.Enrollment
}

// contactState is a contact's state as the items evaluated so far leave it.
type contactState struct {
	w    *contactWork
	c    *nudge.Contact
	enrs []*nudge.Enrollment
}

// merge appends a commit to another.
func merge(all, c *nudge.EngineCommit) {
	all.Enrollments = append(all.Enrollments, c.Enrollments...)
	all.Decisions = append(all.Decisions, c.Decisions...)
	all.Messages = append(all.Messages, c.Messages...)
	all.CancelMessages = append(all.CancelMessages, c.CancelMessages...)
	all.ContactPatches = append(all.ContactPatches, c.ContactPatches...)
	all.InboxDone = append(all.InboxDone, c.InboxDone...)
	all.Released = append(all.Released, c.Released...)
}

// processItem processes one item in its own commit, on fresh state, again
// after ECONFLICT; patched reports that the commit changed contacts. It
// reports false, without an error, for an item that
// still conflicts after commitRetries attempts: most likely another process
// consumed it after this one's lease expired, and there is nothing left to
// do.
func (e *Engine) processItem(ctx context.Context, it *nudge.InboxItem) (ok, patched bool, err error) {
	for range commitRetries {
		now := e.clock.Now()
		var st contactState
		st.c, err = e.store.ContactGet(ctx, it.ContactID)
		switch {
		case nudge.ErrorCode(err) == nudge.ENOTFOUND:
			st.c = nil // erased meanwhile: nothing to do
		case err != nil:
			return false, false, fmt.Errorf("get contact: %w", err)
		default:
			if st.enrs, err = e.contactEnrollments(ctx, it.ContactID); err != nil {
				return false, false, fmt.Errorf("list enrollments: %w", err)
			}
		}
		var cs map[string]*nudge.Contact
		if st.c != nil {
			cs = map[string]*nudge.Contact{st.c.ID: st.c}
		}
		g := e.newGuard(ctx, now, cs, map[string][]*nudge.Enrollment{it.ContactID: st.enrs})
		var c *nudge.EngineCommit
		if c, _, err = e.itemCommit(ctx, it, st, now, g); err != nil {
			return false, false, err
		}
		g.stamp(c)
		err = e.store.EngineCommit(ctx, c, now)
		if nudge.ErrorCode(err) == nudge.ECONFLICT {
			e.log.DebugContext(ctx, "engine: inbox item conflicted; evaluating it again", "seq", it.Seq, "err", err)
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("commit: %w", err)
		}
		return true, len(c.ContactPatches) > 0, nil
	}
	e.log.DebugContext(ctx, "engine: inbox item still conflicts; dropped as consumed by another process", "seq", it.Seq, "contact_id", it.ContactID, "attempts", commitRetries, "err", err)
	return false, false, nil
}

// itemCommit computes everything one inbox item changes, on the state st
// (st.c nil: the contact was erased, and the item is only consumed). It
// returns the commit and the state after it; st is not changed.
func (e *Engine) itemCommit(ctx context.Context, it *nudge.InboxItem, st contactState, now time.Time, g *guard) (*nudge.EngineCommit, contactState, error) {
	commit := &nudge.EngineCommit{InboxDone: []int64{it.Seq}}
	c := st.c
	if c == nil {
		return commit, st, nil
	}
	// Transitions replace entries of enrs: work on a copy.
	enrs := slices.Clone(st.enrs)
	ev := it.Event
	if ev != nil && ev.Type == nudge.EventIdentify {
		ev = nil // an identify is a contact change: its traits are in the contact
	}

	g.setEnrollments(c.ID, enrs)

	// 1. Live enrollments: goal, exit rules, awaited events, the
	// higher-priority journeys' first (their sends take the caps first).
	type liveEn struct {
		i    int
		j    *journey.Journey
		meta *nudge.Journey
	}
	var lives []liveEn
	for i, en := range enrs {
		if !en.Live() {
			continue
		}
		j, meta, err := e.version(ctx, en.JourneyID, en.Version)
		if err != nil {
			e.log.ErrorContext(ctx, "engine: enrollment's journey version is not available", "enrollment_id", en.ID, "journey_id", en.JourneyID, "version", en.Version, "err", err)
			continue
		}
		lives = append(lives, liveEn{i, j, meta})
	}
	slices.SortStableFunc(lives, func(a, b liveEn) int { return cmp.Compare(g.priority(b.j), g.priority(a.j)) })
	for _, l := range lives {
		i, en, j, meta := l.i, enrs[l.i], l.j, l.meta
		var tr *Transition
		if ok, why := goalMet(j, en, c, ev, now); ok {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return nil, st, err
			}
			tr = convert(en, c, why, q, now)
		} else if x := exitRule(j, en, c); x != nil {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return nil, st, err
			}
			tr = exitByRule(en, c, x, q, now)
		} else if ev != nil && en.WaitEvent != "" && en.WaitEvent == ev.Name && meta.Status == nudge.JourneyActive && awaited(j, en, c, ev) {
			// A paused journey's waits hold: an awaited event that arrives
			// meanwhile is not taken; the wait times out after resuming.
			tr = Advance(j, en, c, Input{Kind: InputEvent, Event: ev}, now, e.opts(g))
		}
		if tr == nil {
			continue
		}
		add(commit, tr)
		enrs[i] = tr.Enrollment
		c = tr.Contact
	}

	// 2. Triggers of active journeys, the higher-priority ones first.
	actives := e.active()
	slices.SortStableFunc(actives, func(a, b live) int { return cmp.Compare(g.priority(b.j), g.priority(a.j)) })
	for _, l := range actives {
		entry := &Entry{Journey: l.j, Version: l.version, Contact: c, Existing: enrs}
		t := l.j.Trigger
		switch {
		case t.Kind == journey.TriggerEvent && ev != nil && ev.Name == t.Event:
			entry.Event, entry.Reason, entry.Why = ev, ReasonEnteredEvent, "on "+ev.Name
			if t.Filter != nil {
				ok, err := t.Filter.EvalBool(journey.Vars{Contact: c, Event: ev, Journey: journey.JourneyVars{ID: l.j.ID, Version: l.version}})
				if err != nil {
					add(commit, &Transition{Decisions: []*nudge.Decision{{
						At: now, ContactID: c.ID, JourneyID: l.j.ID, Version: l.version,
						Outcome: nudge.OutcomeNotEntered, Reason: ReasonConditionError,
						Message: fmt.Sprintf("Not entered: the trigger's filter (%s) could not be evaluated on %s: %v.", t.Filter.Source, ev.Name, err),
						Details: map[string]any{"condition": t.Filter.Source, "error": err.Error(), "event": ev.Name},
					}}})
					continue
				}
				if !ok {
					continue
				}
			}
		case t.Kind == journey.TriggerAttribute && ev == nil:
			if !becameTrue(t.Condition, it, journey.JourneyVars{ID: l.j.ID, Version: l.version}) {
				continue
			}
			entry.Reason, entry.Why = ReasonEnteredAttribute, "as "+t.Condition.Source+" became true"
		default:
			continue
		}
		g.setEnrollments(c.ID, enrs)
		tr := Enter(entry, now, e.opts(g))
		add(commit, tr)
		if tr != nil && tr.Enrollment != nil {
			enrs = append(enrs, tr.Enrollment)
			c = tr.Contact
		}
	}
	st.c, st.enrs = c, enrs
	return commit, st, nil
}

// awaited reports whether ev is the event en's wait_for step waits for.
func awaited(j *journey.Journey, en *nudge.Enrollment, c *nudge.Contact, ev *nudge.Event) bool {
	s := j.Step(en.StepID)
	if s == nil || s.Kind != journey.KindWaitFor || s.WaitFor.Event != ev.Name {
		return false
	}
	if s.WaitFor.Match == nil {
		return true
	}
	ok, err := s.WaitFor.Match.EvalBool(journey.Vars{Contact: c, Event: ev, Journey: journeyVars(j, en)})
	return err == nil && ok
}

// becameTrue reports whether the contact change it made cond go from false
// to true: false (or failing, or no contact) on the contact before, true on
// the contact after. An attribute trigger fires on that edge only, so a
// contact who keeps matching does not enter again on an unrelated change.
// The change's own contacts are used, not the contact as it is now, so that
// each change is judged once even when later changes are already stored.
func becameTrue(cond *journey.Expr, it *nudge.InboxItem, jv journey.JourneyVars) bool {
	if it.After == nil {
		return false // a track event, or a change stored without its contacts
	}
	if it.Before != nil {
		if was, err := cond.EvalBool(journey.Vars{Contact: it.Before, Journey: jv}); err == nil && was {
			return false
		}
	}
	is, err := cond.EvalBool(journey.Vars{Contact: it.After, Journey: jv})
	return err == nil && is
}
