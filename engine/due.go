package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nudge/nudge"
)

// dueBatches is how many claimed batches one ProcessDue call advances at
// least, unless nothing more is due; beyond that it goes on only while the
// inbox holds nothing to serve (an event or a contact change), which it
// asks the store before each further claim. While one batch commits (on
// SQLite's single writer), the next one, claimed before it, is computed;
// after the commit, the writer claims the one after, while the computing
// finishes. So the reads and the computing overlap the writes, and an
// event waits behind a mass drain no longer than a few batches: RunOnce
// serves the inbox between calls.
const dueBatches = 4

// inboxPeeker is a store that tells cheaply whether a claim of the inbox
// would take an item now (*sqlite.DB, *postgres.DB). With a store that
// does not, a ProcessDue call stops after dueBatches batches.
type inboxPeeker interface {
	InboxPending(ctx context.Context, now time.Time) (bool, error)
}

// ProcessDue claims the waiting enrollments whose wake time has come (in
// WakeAt order) and advances each: a wait ends (next step), a wait_for times
// out (on_timeout), a deferred send is tried again. Before that, the goal's
// condition and the exit rules are checked on the contact as it is now.
//
// A batch's transitions commit together in one EngineCommit (one
// transaction instead of hundreds); if that fails with ECONFLICT (an event
// moved one of them meanwhile), each transition commits on its own, and the
// ones that still conflict are left to the next claim. Either way each
// enrollment's new state, decisions and messages commit atomically. While
// a batch commits, the next one is computed, except for its enrollments
// of contacts the committing batch changes: those are computed after that
// commit, on what it wrote, so a batch decides as it would after the
// previous one. A batch is claimed before the previous one commits; it
// sees what the ones before that wrote. It returns how many transitions it
// committed.
func (e *Engine) ProcessDue(ctx context.Context) (int, error) {
	n, _, err := e.processDue(ctx)
	return n, err
}

// dueBatch is one claim of due enrollments on its way to its commit.
type dueBatch struct {
	now    time.Time
	ids    []string              // claimed
	ens    []*nudge.Enrollment   // in the order they are decided (priority); nil: not read yet (loadDue)
	outs   []*nudge.EngineCommit // each enrollment's transition; nil: failed, or not computed yet
	full   bool                  // the claim was full: there may be more
	sorted bool                  // ens is in priority order
	// live are the live enrollments of ens's contacts, by contact, read
	// with ens (loadDue; nil: not read), for the guardrails of those
	// computed before anything else commits.
	live map[string][]*nudge.Enrollment

	// Once computed (prepareDue): the transitions to commit, and all of
	// them as one commit.
	commits []*nudge.EngineCommit
	all     *nudge.EngineCommit
}

// commitPreparer is a store that checks and encodes a commit ahead of its
// EngineCommit (*sqlite.DB): the drain prepares a batch's commit while the
// batch before it commits, off the writer's path.
type commitPreparer interface {
	EnginePrepare(c *nudge.EngineCommit, now time.Time) error
}

// processDue is ProcessDue; more reports that there may be more work: the
// last claim was full, or a commit changed contacts (leaving inbox items).
func (e *Engine) processDue(ctx context.Context) (n int, more bool, err error) {
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, false, err
	}
	cur, err := e.claimDue(ctx)
	if err != nil || cur == nil {
		return 0, false, err
	}
	if err := e.loadDue(ctx, cur); err != nil {
		e.releaseDue(ctx, cur)
		return 0, true, err
	}
	if err := e.computeDue(ctx, cur, nil, cur.live); err != nil {
		return 0, cur.full, err
	}
	e.prepareDue(cur)
	// next is claimed before cur commits: the writer is free now, and the
	// claim does not see cur's new states (cur's enrollments are claimed,
	// hence not claimed again). If a claim fails, cur still commits.
	var (
		next     *dueBatch
		claimErr error
	)
	if cur.full && e.goOn(ctx, 2) {
		next, claimErr = e.claimDue(ctx)
	}
	for i := 1; ; i++ {
		// cur (batch i) is computed; next (batch i+1), if any, is claimed.
		type result struct {
			n        int
			patched  bool
			err      error
			ahead    *dueBatch // batch i+2, claimed after cur's commit
			claimErr error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.n, r.patched, r.err = e.commitDue(ctx, cur)
			if r.err == nil && next != nil && next.full && e.goOn(ctx, i+2) {
				r.ahead, r.claimErr = e.claimDue(ctx)
			}
			done <- r
		}()
		var (
			after map[string]bool // contacts of next left until cur commits
			wait  bool            // next has enrollments of those contacts
		)
		if next != nil {
			after = make(map[string]bool, len(cur.ens))
			for _, en := range cur.ens {
				after[en.ContactID] = true
			}
			if err = e.loadDue(ctx, next); err == nil {
				for _, en := range next.ens {
					wait = wait || after[en.ContactID]
				}
				err = e.computeDue(ctx, next, func(contactID string) bool { return !after[contactID] }, next.live)
			}
			if err == nil && !wait {
				e.prepareDue(next)
			}
		}
		r := <-done
		n += r.n
		more = more || r.patched
		if r.err == nil {
			r.err = err
		}
		if r.err == nil && wait {
			// cur's commit changed these contacts' enrollments: the
			// guardrails read them again.
			r.err = e.computeDue(ctx, next, func(contactID string) bool { return after[contactID] }, nil)
			if r.err == nil {
				e.prepareDue(next)
			}
		}
		if r.err != nil {
			for _, b := range []*dueBatch{next, r.ahead} {
				if b != nil {
					e.releaseDue(ctx, b)
				}
			}
			return n, true, r.err
		}
		if next == nil {
			return n, more || cur.full, claimErr
		}
		cur, next, claimErr = next, r.ahead, r.claimErr
	}
}

// goOn reports whether processDue may claim its m-th batch: up to
// dueBatches always, and beyond while the inbox holds nothing a claim
// would take, so that going on is what RunOnce would do next anyway.
func (e *Engine) goOn(ctx context.Context, m int) bool {
	if m <= dueBatches {
		return true
	}
	p, ok := e.store.(inboxPeeker)
	if !ok {
		return false
	}
	pending, err := p.InboxPending(ctx, e.clock.Now())
	return err == nil && !pending
}

// dueIDClaimer is a store that claims due enrollments in two parts
// (*sqlite.DB): the claim on the writer, returning ids, and the read of
// their rows, which the drain does while the writer commits the batch
// before, off the writer's path. The read returns, with the claimed
// enrollments, the live enrollments of their contacts (as
// EnrollmentListLive would), which the guardrails need.
type dueIDClaimer interface {
	EnrollmentClaimDueIDs(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]string, error)
	EnrollmentsClaimed(ctx context.Context, ids []string, now time.Time, lease time.Duration) ([]*nudge.Enrollment, map[string][]*nudge.Enrollment, error)
}

// claimDue claims a batch of due enrollments; nil when none is due. With
// a dueIDClaimer the batch holds only its ids until loadDue reads it.
func (e *Engine) claimDue(ctx context.Context) (*dueBatch, error) {
	now := e.clock.Now()
	if c, ok := e.store.(dueIDClaimer); ok {
		ids, err := c.EnrollmentClaimDueIDs(ctx, now, e.batch, e.lease)
		if err != nil {
			return nil, fmt.Errorf("engine: claim due enrollments: %w", err)
		}
		if len(ids) == 0 {
			return nil, nil
		}
		return &dueBatch{now: now, ids: ids, full: len(ids) >= e.batch}, nil
	}
	ens, err := e.store.EnrollmentClaimDue(ctx, now, e.batch, e.lease)
	if err != nil {
		return nil, fmt.Errorf("engine: claim due enrollments: %w", err)
	}
	if len(ens) == 0 {
		return nil, nil
	}
	b := &dueBatch{now: now, ens: ens, outs: make([]*nudge.EngineCommit, len(ens)), full: len(ens) >= e.batch}
	for _, en := range ens {
		b.ids = append(b.ids, en.ID)
	}
	return b, nil
}

// loadDue reads the enrollments of a batch claimed by id, unless read.
func (e *Engine) loadDue(ctx context.Context, b *dueBatch) error {
	if b.ens != nil {
		return nil
	}
	ens, live, err := e.store.(dueIDClaimer).EnrollmentsClaimed(ctx, b.ids, b.now, e.lease)
	if err != nil {
		return fmt.Errorf("engine: read the claimed due enrollments: %w", err)
	}
	b.ens, b.outs, b.live = ens, make([]*nudge.EngineCommit, len(ens)), live
	if b.ens == nil {
		b.ens = []*nudge.Enrollment{}
	}
	return nil
}

// releaseDue gives a claimed batch back, so that the next claim takes it
// rather than wait for its lease to expire.
func (e *Engine) releaseDue(ctx context.Context, b *dueBatch) {
	if err := e.store.EngineCommit(ctx, &nudge.EngineCommit{Released: b.ids}, b.now); err != nil {
		e.log.ErrorContext(ctx, "engine: due enrollments not released; they are retried when their claim expires", "err", err)
	}
}

// computeDue computes the transitions of b's enrollments whose contact
// passes (nil: all of them), with the guardrails' facts of those contacts
// read in bulk now, but for their live enrollments when live holds them
// (nil: read too). The first call puts the batch in priority order: a
// higher-priority journey's send is decided first, and a lower one
// competing for the same cap sees it. A contact's enrollments are all
// computed by one call.
func (e *Engine) computeDue(ctx context.Context, b *dueBatch, pass func(contactID string) bool, live map[string][]*nudge.Enrollment) error {
	var ids []string
	seen := make(map[string]bool, len(b.ens))
	for _, en := range b.ens {
		if !seen[en.ContactID] && (pass == nil || pass(en.ContactID)) {
			seen[en.ContactID] = true
			ids = append(ids, en.ContactID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	contacts, err := e.contacts(ctx, ids)
	if err != nil {
		return fmt.Errorf("engine: read the contacts of due enrollments: %w", err)
	}
	g := e.newGuard(ctx, b.now, contacts, live)
	for _, en := range b.ens {
		g.batch[en.ID] = true
	}
	if !b.sorted {
		prio := make(map[string]int, len(b.ens))
		for _, en := range b.ens {
			if j, _, err := e.version(ctx, en.JourneyID, en.Version); err == nil {
				prio[en.ID] = g.priority(j)
			}
		}
		slices.SortStableFunc(b.ens, func(a, b *nudge.Enrollment) int { return cmp.Compare(prio[b.ID], prio[a.ID]) })
		b.sorted = true
	}
	for i, en := range b.ens {
		if !seen[en.ContactID] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := e.dueCommit(ctx, en, contacts[en.ContactID], b.now, g)
		if err != nil {
			e.log.ErrorContext(ctx, "engine: due enrollment failed; it is retried when its claim expires", "enrollment_id", en.ID, "err", err)
			continue
		}
		g.stamp(c)
		b.outs[i] = c
	}
	return nil
}

// prepareDue gathers b's computed transitions, in the batch's order, into
// one commit, and prepares it when the store can.
func (e *Engine) prepareDue(b *dueBatch) {
	b.commits = make([]*nudge.EngineCommit, 0, len(b.outs))
	b.all = &nudge.EngineCommit{Enrollments: make([]*nudge.Enrollment, 0, len(b.outs)), Prior: make([]*nudge.Enrollment, 0, len(b.outs))}
	all := b.all
	for _, c := range b.outs {
		if c == nil {
			continue
		}
		b.commits = append(b.commits, c)
		all.Enrollments = append(all.Enrollments, c.Enrollments...)
		for i := range c.Enrollments {
			var p *nudge.Enrollment
			if i < len(c.Prior) {
				p = c.Prior[i]
			}
			all.Prior = append(all.Prior, p)
		}
		all.Decisions = append(all.Decisions, c.Decisions...)
		all.Messages = append(all.Messages, c.Messages...)
		all.CancelMessages = append(all.CancelMessages, c.CancelMessages...)
		all.ContactPatches = append(all.ContactPatches, c.ContactPatches...)
		all.Released = append(all.Released, c.Released...)
	}
	if p, ok := e.store.(commitPreparer); ok && len(b.commits) > 1 {
		// A commit that does not prepare fails the same way in
		// EngineCommit, which reports it.
		_ = p.EnginePrepare(all, b.now)
	}
}

// commitDue commits b's transitions (prepareDue), in the batch's order, in
// one EngineCommit, or on ECONFLICT one by one. It returns how many
// transitions committed and whether they changed contacts.
func (e *Engine) commitDue(ctx context.Context, b *dueBatch) (n int, patched bool, err error) {
	commits, all := b.commits, b.all
	if len(commits) == 0 {
		return 0, false, nil
	}
	patched = len(all.ContactPatches) > 0
	count := func(cs ...*nudge.EngineCommit) int {
		n := 0
		for _, c := range cs {
			n += len(c.Enrollments)
		}
		return n
	}
	if len(commits) > 1 {
		err := e.store.EngineCommit(ctx, all, b.now)
		if err == nil {
			return count(commits...), patched, nil
		}
		if nudge.ErrorCode(err) != nudge.ECONFLICT {
			return 0, patched, fmt.Errorf("engine: commit due transitions: %w", err)
		}
		// The store resets what a failed commit set (Revs, ids); fall
		// back to one commit per enrollment.
	}
	for _, c := range commits {
		err := e.store.EngineCommit(ctx, c, b.now)
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
			return n, patched, fmt.Errorf("engine: commit due transition: %w", err)
		}
		n += count(c)
	}
	return n, patched, nil
}

// dueCommit computes one claimed enrollment's transition, on its contact c
// (nil: erased): a commit with its new state, or one that only releases it
// (a paused journey's waits hold).
func (e *Engine) dueCommit(ctx context.Context, en *nudge.Enrollment, c *nudge.Contact, now time.Time, g *guard) (*nudge.EngineCommit, error) {
	release := func() *nudge.EngineCommit { return &nudge.EngineCommit{Released: []string{en.ID}} }
	j, meta, err := e.version(ctx, en.JourneyID, en.Version)
	if err != nil {
		e.log.ErrorContext(ctx, "engine: enrollment's journey version is not available; released", "enrollment_id", en.ID, "journey_id", en.JourneyID, "version", en.Version, "err", err)
		return release(), nil
	}
	if meta.Status != nudge.JourneyActive {
		return release(), nil
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
	if len(commit.Enrollments) == 1 && commit.Enrollments[0].ID == en.ID {
		// en is the enrollment as claimed and read, at the Rev the
		// commit updates: the store need not read it again.
		commit.Prior = []*nudge.Enrollment{en}
	}
	return commit, nil
}
