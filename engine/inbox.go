package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// ProcessInbox claims a batch of inbox items and processes each, in Seq
// order: the contact's live enrollments first (goal met → converted, exit
// rule → exited, an awaited event → on_event), then the triggers of active
// journeys. Everything one item changes commits in one EngineCommit that
// also deletes the item, so an item is processed exactly once; on ECONFLICT
// (another process moved one of the contact's enrollments) the item is
// evaluated again on fresh state. It returns how many items it processed. An
// item that fails otherwise is logged and left claimed: it is tried again
// when its lease expires.
func (e *Engine) ProcessInbox(ctx context.Context) (int, error) {
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	items, err := e.store.InboxClaim(ctx, e.clock.Now(), e.batch, e.lease)
	if err != nil {
		return 0, fmt.Errorf("engine: claim inbox: %w", err)
	}
	n := 0
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := e.processItem(ctx, it); err != nil {
			e.log.ErrorContext(ctx, "engine: inbox item failed; it is retried when its claim expires", "seq", it.Seq, "contact_id", it.ContactID, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

func (e *Engine) processItem(ctx context.Context, it *nudge.InboxItem) error {
	for range commitRetries {
		now := e.clock.Now()
		c, err := e.itemCommit(ctx, it, now)
		if err != nil {
			return err
		}
		err = e.store.EngineCommit(ctx, c, now)
		if nudge.ErrorCode(err) == nudge.ECONFLICT {
			e.log.DebugContext(ctx, "engine: inbox item conflicted; evaluating it again", "seq", it.Seq, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	return fmt.Errorf("commit: still conflicting after %d attempts", commitRetries)
}

// itemCommit computes everything one inbox item changes.
func (e *Engine) itemCommit(ctx context.Context, it *nudge.InboxItem, now time.Time) (*nudge.EngineCommit, error) {
	commit := &nudge.EngineCommit{InboxDone: []int64{it.Seq}}
	c, err := e.store.ContactGet(ctx, it.ContactID)
	if nudge.ErrorCode(err) == nudge.ENOTFOUND {
		return commit, nil // erased meanwhile: nothing to do
	}
	if err != nil {
		return nil, fmt.Errorf("get contact: %w", err)
	}
	enrs, err := e.contactEnrollments(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	ev := it.Event
	if ev != nil && ev.Type == nudge.EventIdentify {
		ev = nil // an identify is a contact change: its traits are in the contact
	}

	// 1. Live enrollments: goal, exit rules, awaited events.
	for i, en := range enrs {
		if !en.Live() {
			continue
		}
		j, meta, err := e.version(ctx, en.JourneyID, en.Version)
		if err != nil {
			e.log.ErrorContext(ctx, "engine: enrollment's journey version is not available", "enrollment_id", en.ID, "journey_id", en.JourneyID, "version", en.Version, "err", err)
			continue
		}
		var tr *Transition
		if ok, why := goalMet(j, en, c, ev, now); ok {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return nil, err
			}
			tr = convert(en, c, why, q, now)
		} else if x := exitRule(j, en, c); x != nil {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return nil, err
			}
			tr = exitByRule(en, c, x, q, now)
		} else if ev != nil && en.WaitEvent != "" && en.WaitEvent == ev.Name && meta.Status == nudge.JourneyActive && awaited(j, en, c, ev) {
			// A paused journey's waits hold: an awaited event that arrives
			// meanwhile is not taken; the wait times out after resuming.
			tr = Advance(j, en, c, Input{Kind: InputEvent, Event: ev}, now, e.opts())
		}
		if tr == nil {
			continue
		}
		add(commit, tr)
		enrs[i] = tr.Enrollment
		c = tr.Contact
	}

	// 2. Triggers of active journeys.
	for _, l := range e.active() {
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
			// Level-triggered: see the package doc (Limitations).
			ok, err := t.Condition.EvalBool(journey.Vars{Contact: c, Journey: journey.JourneyVars{ID: l.j.ID, Version: l.version}})
			if err != nil || !ok {
				continue
			}
			entry.Reason, entry.Why, entry.Quiet = ReasonEnteredAttribute, "as "+t.Condition.Source+" became true", true
		default:
			continue
		}
		tr := Enter(entry, now, e.opts())
		add(commit, tr)
		if tr != nil && tr.Enrollment != nil {
			enrs = append(enrs, tr.Enrollment)
			c = tr.Contact
		}
	}
	return commit, nil
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
