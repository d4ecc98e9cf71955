package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nudge/nudge"
)

// ProcessDue claims the waiting enrollments whose wake time has come (in
// WakeAt order) and advances each: a wait ends (next step), a wait_for times
// out (on_timeout), a deferred send is tried again. Before that, the goal's
// condition and the exit rules are checked on the contact as it is now.
//
// The batch's transitions commit together in one EngineCommit (one
// transaction instead of hundreds); if that fails with ECONFLICT (an event
// moved one of them meanwhile), each transition commits on its own, and the
// ones that still conflict are left to the next claim. Either way each
// enrollment's new state, decisions and messages commit atomically. It
// returns how many transitions it committed.
func (e *Engine) ProcessDue(ctx context.Context) (int, error) {
	n, _, err := e.processDue(ctx)
	return n, err
}

// processDue is ProcessDue; more reports that there may be more work: the
// claim was full, or a commit changed contacts (leaving inbox items).
func (e *Engine) processDue(ctx context.Context) (n int, more bool, err error) {
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, false, err
	}
	now := e.clock.Now()
	ens, err := e.store.EnrollmentClaimDue(ctx, now, e.batch, e.lease)
	if err != nil {
		return 0, false, fmt.Errorf("engine: claim due enrollments: %w", err)
	}
	if len(ens) == 0 {
		return 0, false, nil
	}
	more = len(ens) >= e.batch
	ids := make([]string, 0, len(ens))
	seen := make(map[string]bool, len(ens))
	for _, en := range ens {
		if !seen[en.ContactID] {
			seen[en.ContactID] = true
			ids = append(ids, en.ContactID)
		}
	}
	contacts, err := e.contacts(ctx, ids)
	if err != nil {
		return 0, more, fmt.Errorf("engine: read the contacts of due enrollments: %w", err)
	}
	// The guardrails read the batch's facts in bulk, and the batch is
	// advanced in priority order: a higher-priority journey's send is
	// decided first, and a lower one competing for the same cap sees it.
	g := e.newGuard(ctx, now, contacts, nil)
	prio := make(map[string]int, len(ens))
	for _, en := range ens {
		g.batch[en.ID] = true
		if j, _, err := e.version(ctx, en.JourneyID, en.Version); err == nil {
			prio[en.ID] = g.priority(j)
		}
	}
	slices.SortStableFunc(ens, func(a, b *nudge.Enrollment) int { return cmp.Compare(prio[b.ID], prio[a.ID]) })
	var (
		commits = make([]*nudge.EngineCommit, 0, len(ens))
		all     = &nudge.EngineCommit{Enrollments: make([]*nudge.Enrollment, 0, len(ens))}
	)
	for _, en := range ens {
		if err := ctx.Err(); err != nil {
			return 0, more, err
		}
		c, err := e.dueCommit(ctx, en, contacts[en.ContactID], now, g)
		if err != nil {
			e.log.ErrorContext(ctx, "engine: due enrollment failed; it is retried when its claim expires", "enrollment_id", en.ID, "err", err)
			continue
		}
		g.stamp(c)
		commits = append(commits, c)
		all.Enrollments = append(all.Enrollments, c.Enrollments...)
		all.Decisions = append(all.Decisions, c.Decisions...)
		all.Messages = append(all.Messages, c.Messages...)
		all.CancelMessages = append(all.CancelMessages, c.CancelMessages...)
		all.ContactPatches = append(all.ContactPatches, c.ContactPatches...)
		all.Released = append(all.Released, c.Released...)
	}
	if len(commits) == 0 {
		return 0, more, nil
	}
	more = more || len(all.ContactPatches) > 0
	count := func(cs ...*nudge.EngineCommit) int {
		n := 0
		for _, c := range cs {
			n += len(c.Enrollments)
		}
		return n
	}
	if len(commits) > 1 {
		err := e.store.EngineCommit(ctx, all, now)
		if err == nil {
			return count(commits...), more, nil
		}
		if nudge.ErrorCode(err) != nudge.ECONFLICT {
			return 0, more, fmt.Errorf("engine: commit due transitions: %w", err)
		}
		// The store resets what a failed commit set (Revs, ids); fall
		// back to one commit per enrollment.
	}
	for _, c := range commits {
		err := e.store.EngineCommit(ctx, c, now)
		if nudge.ErrorCode(err) == nudge.ECONFLICT {
			// Another process (an event for this contact) moved it first;
			// if it is still due, the next claim takes it again.
			var ids []string
			for _, en := range c.Enrollments {
				ids = append(ids, en.ID)
			}
			e.log.DebugContext(ctx, "engine: due enrollment changed meanwhile", "enrollment_ids", ids, "err", err)
			continue
		}
		if err != nil {
			return n, more, fmt.Errorf("engine: commit due transition: %w", err)
		}
		n += count(c)
	}
	return n, more, nil
}

// dueCommit computes one claimed enrollment's transition, on its contact c
// (nil: erased): a commit with its new state, or one that only releases it
// (a paused journey's waits hold).
func (e *Engine) dueCommit(ctx context.Context, en *nudge.Enrollment, c *nudge.Contact, now time.Time, g *guard) (*nudge.EngineCommit, error) {
	release := &nudge.EngineCommit{Released: []string{en.ID}}
	j, meta, err := e.version(ctx, en.JourneyID, en.Version)
	if err != nil {
		e.log.ErrorContext(ctx, "engine: enrollment's journey version is not available; released", "enrollment_id", en.ID, "journey_id", en.JourneyID, "version", en.Version, "err", err)
		return release, nil
	}
	if meta.Status != nudge.JourneyActive {
		return release, nil
	}
	var tr *Transition
	switch {
	case c == nil:
		q, err := e.queuedCount(ctx, en.ID)
		if err != nil {
			return nil, err
		}
		tr = endTransition(en, nil, nudge.EnrollmentExited, nudge.OutcomeExited, ReasonContactErased, "Exited: the contact was erased", nil, q, now)
	default:
		if met, why := goalMet(j, en, c, nil, now); met {
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
		} else {
			tr = Advance(j, en, c, Input{Kind: InputWake}, now, e.opts(g))
		}
	}
	if tr.Enrollment != nil {
		g.advanced(tr.Enrollment)
	}
	commit := &nudge.EngineCommit{}
	add(commit, tr)
	return commit, nil
}
