package engine

import (
	"context"
	"fmt"

	"github.com/nudge/nudge"
)

// ProcessDue claims the waiting enrollments whose wake time has come (in
// WakeAt order) and advances each: a wait ends (next step), a wait_for times
// out (on_timeout), a deferred send is tried again. Before that, the goal's
// condition and the exit rules are checked on the contact as it is now. Each
// enrollment's transition commits on its own. It returns how many
// transitions it committed.
func (e *Engine) ProcessDue(ctx context.Context) (int, error) {
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	ens, err := e.store.EnrollmentClaimDue(ctx, e.clock.Now(), e.batch, e.lease)
	if err != nil {
		return 0, fmt.Errorf("engine: claim due enrollments: %w", err)
	}
	n := 0
	for _, en := range ens {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		ok, err := e.processDue(ctx, en)
		if err != nil {
			e.log.ErrorContext(ctx, "engine: due enrollment failed; it is retried when its claim expires", "enrollment_id", en.ID, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// processDue advances one claimed enrollment; ok is false when it made no
// transition (released, or another process moved it first).
func (e *Engine) processDue(ctx context.Context, en *nudge.Enrollment) (ok bool, err error) {
	now := e.clock.Now()
	release := func() (bool, error) {
		return false, e.store.EngineCommit(ctx, &nudge.EngineCommit{Released: []string{en.ID}}, now)
	}
	j, meta, err := e.version(ctx, en.JourneyID, en.Version)
	if err != nil {
		e.log.ErrorContext(ctx, "engine: enrollment's journey version is not available; released", "enrollment_id", en.ID, "journey_id", en.JourneyID, "version", en.Version, "err", err)
		return release()
	}
	if meta.Status != nudge.JourneyActive {
		return release() // a paused journey's waits hold
	}
	var tr *Transition
	c, err := e.store.ContactGet(ctx, en.ContactID)
	switch {
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		q, err := e.queuedCount(ctx, en.ID)
		if err != nil {
			return false, err
		}
		tr = endTransition(en, nil, nudge.EnrollmentExited, nudge.OutcomeExited, ReasonContactErased, "Exited: the contact was erased", nil, q, now)
	case err != nil:
		return false, fmt.Errorf("get contact: %w", err)
	default:
		if met, why := goalMet(j, en, c, nil, now); met {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return false, err
			}
			tr = convert(en, c, why, q, now)
		} else if x := exitRule(j, en, c); x != nil {
			q, err := e.queuedCount(ctx, en.ID)
			if err != nil {
				return false, err
			}
			tr = exitByRule(en, c, x, q, now)
		} else {
			tr = Advance(j, en, c, Input{Kind: InputWake}, now, e.opts())
		}
	}
	commit := &nudge.EngineCommit{}
	add(commit, tr)
	err = e.store.EngineCommit(ctx, commit, now)
	if nudge.ErrorCode(err) == nudge.ECONFLICT {
		// Another process (an event for this contact) moved it first; if it
		// is still due, the next claim takes it again.
		e.log.DebugContext(ctx, "engine: due enrollment changed meanwhile", "enrollment_id", en.ID)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return true, nil
}
