package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nudge/nudge"
)

// conflictState is the SQLSTATE nudge_conflict raises (migration 0002).
const conflictState = "NC409"

// EngineCommit commits a transition in one transaction; on any error
// nothing of it is applied and the structs are left as they were.
//
// An enrollment with Rev 0 is inserted, with stored revision 1; ECONFLICT
// if its id exists or if it would be a second live (waiting) enrollment for
// its journey, contact and key. Any other is updated only if its stored
// revision is still Rev (ECONFLICT naming it otherwise), which increments
// it; updates go before inserts, so an enrollment that ends frees its key
// for a new one in the same commit. Writing an enrollment clears its claim,
// as does naming it in Released. After a successful commit each committed
// enrollment's Rev is its new stored revision, its UpdatedAt now (and a
// zero EnteredAt now); each decision's ID is set (increasing in commit
// order) and a zero At is now. Messages are stored with CreatedAt and
// UpdatedAt now, a zero AvailableAt as now and an empty Status as queued;
// one whose idempotency key exists is skipped; each one stored gets the
// first entry of its history (its status at CreatedAt). CancelMessages then
// moves the queued messages of those enrollments to cancelled, with a
// history entry; a message sending or beyond is left. ContactPatches
// merge as ContactMerge does, leaving changed contacts in the inbox.
// InboxDone items are deleted; one no longer there was consumed by another
// claim, and the commit fails with ECONFLICT rather than apply the same
// work twice.
//
// The commit runs in an explicit transaction: the patches are merged
// first, then one pipelined batch reads what the report counters know of
// the enrollments it names, and one more sends its statements, with the
// counters' changes last (see reportcount.go). A moved revision or a consumed inbox item makes a
// statement raise NC409 (nudge_conflict), which rolls everything back
// without a round trip to decide.
func (db *DB) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	if c == nil {
		return nudge.Errorf(nudge.EINVALID, "engine commit: nothing to commit")
	}
	now = utc(now)
	cb, err := commitBatch(c, now)
	if err != nil {
		return err
	}
	for i, p := range c.ContactPatches {
		if p == nil || p.ID == "" {
			return nudge.WithField(fmt.Sprintf("contact_patches[%d]", i), nudge.FieldErrorf("id", "required"))
		}
	}
	err = db.inTx(ctx, "engine commit", func(tx pgx.Tx) error {
		if len(c.ContactPatches) > 0 {
			if err := mergeContacts(ctx, tx, c.ContactPatches, now); err != nil {
				return err
			}
		}
		before, stored, err := reportBefore(ctx, tx, c)
		if err != nil {
			return err
		}
		b := pgx.Batch{QueuedQueries: slices.Clone(cb.batch.QueuedQueries)}
		if err := reportAfter(&b, c, before, stored, now); err != nil {
			return err
		}
		if b.Len() == 0 {
			return nil
		}
		return runBatch(ctx, tx, &b)
	})
	if err != nil {
		return commitError(err)
	}
	cb.done(now)
	return nil
}

// mergeContacts applies patches as ContactMerge does, leaving inbox items.
func mergeContacts(ctx context.Context, tx pgx.Tx, patches []*nudge.ContactPatch, now time.Time) error {
	ids := make([]string, len(patches))
	for i, p := range patches {
		ids[i] = p.ID
	}
	created, err := createContacts(ctx, tx, ids, now)
	if err != nil {
		return err
	}
	cs, err := lockContacts(ctx, tx, ids)
	if err != nil {
		return err
	}
	touched, changed := map[string]bool{}, created
	befores := map[string]*nudge.Contact{}
	for _, p := range patches {
		c := cs[p.ID]
		keepBefore(befores, c, created[p.ID])
		before := contentKey(c)
		p.Apply(c)
		c.UpdatedAt = now
		touched[p.ID] = true
		if contentKey(c) != before {
			changed[p.ID] = true
		}
	}
	if err := updateContacts(ctx, tx, cs, touched); err != nil {
		return err
	}
	return insertInbox(ctx, tx, sortedKeys(changed), befores, cs, now)
}

type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// runBatch sends b and returns the first error of its statements. Closing
// the results runs each statement's callback in turn.
func runBatch(ctx context.Context, s batchSender, b *pgx.Batch) error {
	return s.SendBatch(ctx, b).Close()
}

// commitError gives the errors of a failed commit their codes.
func commitError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == conflictState:
			return fmt.Errorf("engine commit: %w", nudge.Errorf(nudge.ECONFLICT, "%s", pe.Message))
		case pe.Code == "23505" && pe.ConstraintName == "enrollments_live_idx":
			return fmt.Errorf("engine commit: %w", nudge.Errorf(nudge.ECONFLICT,
				"the contact already has a live enrollment in this journey with this key: %s", pe.Detail))
		case pe.Code == "23505" && pe.ConstraintName == "enrollments_pkey":
			return fmt.Errorf("engine commit: %w", nudge.Errorf(nudge.ECONFLICT, "enrollment exists: %s", pe.Detail))
		case pe.Code == "23505" && pe.ConstraintName == "messages_pkey":
			return fmt.Errorf("engine commit: %w", nudge.Errorf(nudge.ECONFLICT, "message exists: %s", pe.Detail))
		case pe.Code == "23503" && pe.TableName == "enrollments":
			return fmt.Errorf("engine commit: %w", nudge.Errorf(nudge.EINVALID, "enrollment of an unknown contact or journey version: %s", pe.Detail))
		}
	}
	return wrap("engine commit", err)
}

// orNow returns t in UTC, or now if t is zero.
func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return utc(t)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := utc(t)
	return &u
}

// enrollmentJSON encodes an enrollment's event and steps for jsonb, with
// their times in UTC.
func enrollmentJSON(e *nudge.Enrollment) (event, steps *string, err error) {
	if e.Event != nil {
		ev := *e.Event
		ev.Timestamp, ev.ReceivedAt = utc(ev.Timestamp), utc(ev.ReceivedAt)
		b, err := json.Marshal(&ev)
		if err != nil {
			return nil, nil, nudge.FieldErrorf("event", "cannot be stored as JSON: %v", err)
		}
		s := string(b)
		event = &s
	}
	if e.Steps != nil {
		st := make(map[string]nudge.StepRecord, len(e.Steps))
		for k, r := range e.Steps {
			r.At = utc(r.At)
			st[k] = r
		}
		b, err := json.Marshal(st)
		if err != nil {
			return nil, nil, nudge.FieldErrorf("steps", "cannot be stored as JSON: %v", err)
		}
		s := string(b)
		steps = &s
	}
	return event, steps, nil
}

// enrollmentRows are enrollments as column arrays for unnest.
type enrollmentRows struct {
	ids, journeys, contacts, keys, states, stepIDs, waitEvents []string
	versions, revs                                             []int64
	heldOut                                                    []bool
	events, steps                                              []*string
	wakeAt, endedAt                                            []*time.Time
	enteredAt, updatedAt                                       []time.Time
}

func (r *enrollmentRows) add(e *nudge.Enrollment, now time.Time) error {
	event, steps, err := enrollmentJSON(e)
	if err != nil {
		return err
	}
	r.ids, r.journeys, r.contacts, r.keys = append(r.ids, e.ID), append(r.journeys, e.JourneyID), append(r.contacts, e.ContactID), append(r.keys, e.Key)
	r.states, r.stepIDs, r.waitEvents = append(r.states, e.State), append(r.stepIDs, e.StepID), append(r.waitEvents, e.WaitEvent)
	r.versions, r.revs, r.heldOut = append(r.versions, e.Version), append(r.revs, e.Rev), append(r.heldOut, e.HeldOut)
	r.events, r.steps = append(r.events, event), append(r.steps, steps)
	r.wakeAt, r.endedAt = append(r.wakeAt, nullTime(e.WakeAt)), append(r.endedAt, nullTime(e.EndedAt))
	r.enteredAt, r.updatedAt = append(r.enteredAt, orNow(e.EnteredAt, now)), append(r.updatedAt, now)
	return nil
}

func (r *enrollmentRows) args() []any {
	return []any{r.ids, r.journeys, r.versions, r.contacts, r.keys, r.states, r.stepIDs, r.wakeAt, r.waitEvents,
		r.heldOut, r.events, r.steps, r.enteredAt, r.updatedAt, r.endedAt, r.revs}
}

const enrollmentUnnest = `unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::timestamptz[], $9::text[], $10::bool[], $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[],
		$15::timestamptz[], $16::bigint[])
	AS v(id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event, held_out, event, steps,
		entered_at, updated_at, ended_at, rev)`

// updateEnrollmentsQuery advances enrollments whose rev is still the one
// read, clearing their claims, and raises NC409 naming the others. An
// enrollment's journey, version, contact and key never change.
const updateEnrollmentsQuery = `
	WITH v AS MATERIALIZED (SELECT * FROM ` + enrollmentUnnest + `), u AS (
		UPDATE enrollments e SET state = v.state, step_id = v.step_id, wake_at = v.wake_at, wait_event = v.wait_event,
			held_out = v.held_out, event = v.event::jsonb, steps = v.steps::jsonb, entered_at = v.entered_at,
			updated_at = v.updated_at, ended_at = v.ended_at, rev = e.rev + 1, claimed_until = NULL
		FROM v WHERE e.id = v.id AND e.rev = v.rev
		RETURNING e.id
	)
	SELECT nudge_conflict('enrollments changed since they were read: ' ||
		array_to_string(ARRAY(SELECT id FROM v EXCEPT ALL SELECT id FROM u ORDER BY 1), ', '))
	FROM (SELECT count(*) AS n FROM u) x WHERE x.n <> (SELECT count(*) FROM v)`

const insertEnrollmentsQuery = `
	INSERT INTO enrollments (id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event,
		held_out, event, steps, entered_at, updated_at, ended_at, rev)
	SELECT id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event,
		held_out, event::jsonb, steps::jsonb, entered_at, updated_at, ended_at, 1
	FROM ` + enrollmentUnnest

// insertDecisionsQuery draws the decisions' ids in input order first, so the
// i-th decision gets the i-th smallest id.
const insertDecisionsQuery = `
	INSERT INTO decisions (id, at, contact_id, journey_id, version, enrollment_id, step_id, channel, outcome,
		reason, message, details, policy_version)
	OVERRIDING SYSTEM VALUE
	SELECT s.ids[d.ord], d.at, d.contact_id, d.journey_id, d.version, d.enrollment_id, d.step_id, d.channel,
		d.outcome, d.reason, d.message, d.details::jsonb, d.policy_version
	FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[]) WITH ORDINALITY
		AS d(at, contact_id, journey_id, version, enrollment_id, step_id, channel, outcome, reason, message,
			details, policy_version, ord),
		(SELECT array_agg(nextval('decisions_id_seq') ORDER BY g) AS ids FROM generate_series(1, $13::int) g) s
	RETURNING id`

// insertMessagesQuery inserts messages, skipping those whose idempotency
// key exists, and writes the first history entry of each one inserted.
const insertMessagesQuery = `
	WITH ins AS (
		INSERT INTO messages (id, enrollment_id, contact_id, journey_id, version, step_id, channel, template,
			purpose, status, idempotency_key, available_at, details, created_at, updated_at,
			provider_id, attempts, error)
		SELECT id, enrollment_id, contact_id, journey_id, version, step_id, channel, template,
			purpose, status, idempotency_key, available_at, details::jsonb, created_at, updated_at,
			provider_id, attempts, error
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::text[], $14::timestamptz[], $15::timestamptz[],
				$16::text[], $17::int[], $18::text[])
			AS m(id, enrollment_id, contact_id, journey_id, version, step_id, channel, template,
				purpose, status, idempotency_key, available_at, details, created_at, updated_at,
				provider_id, attempts, error)
		ORDER BY idempotency_key
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING id, status, created_at
	)
	INSERT INTO message_statuses (message_id, status, at)
	SELECT id, status, created_at FROM ins ORDER BY id`

// cancelMessagesQuery cancels the queued messages of enrollments, with a
// history entry each. Only queued ones: a message a worker moved to
// sending may be at the provider already. The rows are locked in id order,
// as MessageUpdate locks them; a row that moved on while this waited for
// it is left.
const cancelMessagesQuery = `
	WITH l AS (
		SELECT id FROM messages WHERE enrollment_id = ANY($1) AND status = 'queued' ORDER BY id FOR UPDATE
	), c AS (
		UPDATE messages m SET status = 'cancelled', updated_at = $2, claimed_until = NULL
		FROM l WHERE m.id = l.id AND m.status = 'queued'
		RETURNING m.id
	)
	INSERT INTO message_statuses (message_id, status, at)
	SELECT id, 'cancelled', $2 FROM c ORDER BY id`

// deleteInboxQuery consumes inbox items and raises NC409 if any was
// already consumed (its claim expired and another node did the work).
const deleteInboxQuery = `
	WITH d AS (DELETE FROM inbox WHERE seq = ANY($1::bigint[]) RETURNING seq)
	SELECT nudge_conflict('inbox items already consumed: ' ||
		array_to_string(ARRAY(SELECT unnest($1::bigint[]) EXCEPT SELECT seq FROM d ORDER BY 1), ', '))
	FROM (SELECT count(*) AS n FROM d) x WHERE x.n <> cardinality(ARRAY(SELECT DISTINCT unnest($1::bigint[])))`

// commitBatch validates c and queues its statements, in the order that
// keeps the constraints true: enrollments are advanced before new ones are
// inserted (an enrollment that ends frees its key for a new one), messages
// are inserted before the queued ones of ended enrollments are cancelled.
func commitBatch(c *nudge.EngineCommit, now time.Time) (*committed, error) {
	cb := &committed{c: c}
	b := &cb.batch
	var ins, upd enrollmentRows
	for i, e := range c.Enrollments {
		field := fmt.Sprintf("enrollments[%d]", i)
		switch {
		case e == nil:
			return nil, nudge.FieldErrorf(field, "enrollment required")
		case e.ID == "":
			return nil, nudge.FieldErrorf(field+".id", "required")
		case e.JourneyID == "":
			return nil, nudge.FieldErrorf(field+".journey_id", "required")
		case e.ContactID == "":
			return nil, nudge.FieldErrorf(field+".contact_id", "required")
		case e.State != nudge.EnrollmentWaiting && e.State != nudge.EnrollmentCompleted &&
			e.State != nudge.EnrollmentConverted && e.State != nudge.EnrollmentExited:
			return nil, nudge.FieldErrorf(field+".state", "%q is not one of waiting, completed, converted, exited", e.State)
		case e.Rev < 0:
			return nil, nudge.FieldErrorf(field+".rev", "must not be negative")
		}
		rows := &upd
		if e.Rev == 0 {
			rows = &ins
		}
		if err := rows.add(e, now); err != nil {
			return nil, nudge.WithField(field, err)
		}
	}
	if len(upd.ids) > 0 {
		b.Queue(updateEnrollmentsQuery, upd.args()...)
	}
	if len(ins.ids) > 0 {
		b.Queue(insertEnrollmentsQuery, ins.args()...)
	}
	if len(c.Released) > 0 {
		b.Queue(`UPDATE enrollments SET claimed_until = NULL WHERE id = ANY($1) AND claimed_until IS NOT NULL`, c.Released)
	}
	if n := len(c.Decisions); n > 0 {
		var (
			at                                                                                   = make([]time.Time, n)
			contacts, journeys, enrollments, stepIDs, channels, outcomes, reasons, msgs, details = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
			versions, policies                                                                   = make([]int64, n), make([]int64, n)
		)
		for i, d := range c.Decisions {
			field := fmt.Sprintf("decisions[%d]", i)
			switch {
			case d == nil:
				return nil, nudge.FieldErrorf(field, "decision required")
			case d.ContactID == "":
				return nil, nudge.FieldErrorf(field+".contact_id", "required")
			case d.Outcome == "":
				return nil, nudge.FieldErrorf(field+".outcome", "required")
			}
			var err error
			if details[i], err = jsonText(d.Details); err != nil {
				return nil, nudge.FieldErrorf(field+".details", "cannot be stored as JSON: %v", err)
			}
			at[i], contacts[i], journeys[i], versions[i] = orNow(d.At, now), d.ContactID, d.JourneyID, d.Version
			enrollments[i], stepIDs[i], channels[i], outcomes[i] = d.EnrollmentID, d.StepID, d.Channel, d.Outcome
			reasons[i], msgs[i], policies[i] = d.Reason, d.Message, d.PolicyVersion
		}
		decisions := c.Decisions
		decisionIDs := &cb.decisionIDs
		b.Queue(insertDecisionsQuery, at, contacts, journeys, versions, enrollments, stepIDs, channels, outcomes,
			reasons, msgs, details, policies, n).Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			slices.Sort(ids)
			if len(ids) != len(decisions) {
				return fmt.Errorf("%d decision ids for %d decisions", len(ids), len(decisions))
			}
			*decisionIDs = ids
			return nil
		})
	}
	if n := len(c.Messages); n > 0 {
		var (
			ids, enrollments, contacts, journeys, stepIDs, channels, templates, purposes, statuses, keys = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			providerIDs, errs                                                                            = make([]string, n), make([]string, n)
			attempts                                                                                     = make([]int32, n)
			versions                                                                                     = make([]int64, n)
			details                                                                                      = make([]*string, n)
			available, created, updated                                                                  = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		)
		for i, m := range c.Messages {
			field := fmt.Sprintf("messages[%d]", i)
			switch {
			case m == nil:
				return nil, nudge.FieldErrorf(field, "message required")
			case m.ID == "":
				return nil, nudge.FieldErrorf(field+".id", "required")
			case m.ContactID == "":
				return nil, nudge.FieldErrorf(field+".contact_id", "required")
			case m.Channel == "":
				return nil, nudge.FieldErrorf(field+".channel", "required")
			case m.IdempotencyKey == "":
				return nil, nudge.FieldErrorf(field+".idempotency_key", "required")
			}
			var err error
			if details[i], err = jsonText(m.Details); err != nil {
				return nil, nudge.FieldErrorf(field+".details", "cannot be stored as JSON: %v", err)
			}
			ids[i], enrollments[i], contacts[i], journeys[i], versions[i] = m.ID, m.EnrollmentID, m.ContactID, m.JourneyID, m.Version
			stepIDs[i], channels[i], templates[i], purposes[i] = m.StepID, m.Channel, m.Template, m.Purpose
			statuses[i], keys[i] = cmp.Or(m.Status, nudge.MessageQueued), m.IdempotencyKey
			available[i], created[i], updated[i] = orNow(m.AvailableAt, now), now, now
			providerIDs[i], attempts[i], errs[i] = m.ProviderID, int32(m.Attempts), m.Error
		}
		b.Queue(insertMessagesQuery, ids, enrollments, contacts, journeys, versions, stepIDs, channels, templates,
			purposes, statuses, keys, available, details, created, updated, providerIDs, attempts, errs)
	}
	if len(c.CancelMessages) > 0 {
		b.Queue(cancelMessagesQuery, c.CancelMessages, now)
	}
	if len(c.InboxDone) > 0 {
		b.Queue(deleteInboxQuery, c.InboxDone)
	}
	return cb, nil
}

// committed is a commit's batch, and what the store tells the caller once
// it has committed.
type committed struct {
	c           *nudge.EngineCommit
	batch       pgx.Batch
	decisionIDs []int64
}

// done sets the decisions' ids and the enrollments' revs and update times,
// as stored.
func (cb *committed) done(now time.Time) {
	for i, d := range cb.c.Decisions {
		d.ID = cb.decisionIDs[i]
		if d.At.IsZero() {
			d.At = now
		}
	}
	for _, e := range cb.c.Enrollments {
		e.Rev++
		e.UpdatedAt = now
		if e.EnteredAt.IsZero() {
			e.EnteredAt = now
		}
	}
}
