package postgres

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

// The report counters of migration 0013 are kept in Go
// (store/internal/reportcount), once per call, in the transaction of each
// write that changes them: EngineCommit reads what the enrollments it names
// count before it writes (reportBefore) and adds the difference after its
// writes; MessageUpdate moves its messages between the counters of their
// statuses; ContactErase takes out what the contact's enrollments count.

const (
	reportEnrollmentsQuery = `SELECT id, journey_id, version, nudge_report_day(entered_at), held_out, state
		FROM enrollments WHERE id = ANY($1)`
	reportDecisionsQuery = `SELECT enrollment_id, step_id, channel, outcome, reason FROM decisions
		WHERE enrollment_id = ANY($1) AND enrollment_id <> '' ORDER BY enrollment_id, id`
	// reportQueuedQuery reads and locks, as cancelMessagesQuery does, the
	// queued messages a commit cancels, so that they are still queued when
	// it does.
	reportQueuedQuery = `SELECT enrollment_id, step_id, channel FROM messages
		WHERE enrollment_id = ANY($1) AND status = 'queued' ORDER BY id FOR UPDATE`
	reportKeysQuery = `SELECT idempotency_key FROM messages WHERE idempotency_key = ANY($1)`
	// reportErasedMessagesQuery counts the messages of enrollments by step,
	// channel and status.
	reportErasedMessagesQuery = `SELECT enrollment_id, step_id, channel, status, count(*) FROM messages
		WHERE enrollment_id = ANY($1) GROUP BY 1, 2, 3, 4`

	// The report*AddQuery statements add a JSON array of rows (see
	// reportcount.Deltas.Rows) to a counter table, in key order.
	reportCohortsAddQuery = `INSERT INTO report_cohorts AS t (journey_id, version, day, held_out, state, reason, n)
		SELECT r->>0, (r->>1)::bigint, (r->>2)::bigint, (r->>3)::boolean, r->>4, r->>5, (r->>6)::bigint
		FROM jsonb_array_elements($1::jsonb) r ORDER BY 1, 2, 3, 4, 5, 6
		ON CONFLICT (journey_id, version, day, held_out, state, reason) DO UPDATE SET n = t.n + excluded.n`
	reportOutcomesAddQuery = `INSERT INTO report_outcomes AS t (journey_id, version, day, step_id, channel, outcome, reason,
			decisions, enrollments)
		SELECT r->>0, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, (r->>8)::bigint
		FROM jsonb_array_elements($1::jsonb) r ORDER BY 1, 2, 3, 4, 5, 6, 7
		ON CONFLICT (journey_id, version, day, step_id, channel, outcome, reason)
		DO UPDATE SET decisions = t.decisions + excluded.decisions, enrollments = t.enrollments + excluded.enrollments`
	reportPathsAddQuery = `INSERT INTO report_paths AS t (journey_id, version, day, step_id, sent, step_held, journey_held,
			converted, n)
		SELECT r->>0, (r->>1)::bigint, (r->>2)::bigint, r->>3, (r->>4)::boolean, (r->>5)::boolean, (r->>6)::boolean,
			(r->>7)::boolean, (r->>8)::bigint
		FROM jsonb_array_elements($1::jsonb) r ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
		ON CONFLICT (journey_id, version, day, step_id, sent, step_held, journey_held, converted)
		DO UPDATE SET n = t.n + excluded.n`
	reportMessagesAddQuery = `INSERT INTO report_messages AS t (journey_id, version, day, step_id, channel, status, n)
		SELECT r->>0, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, r->>5, (r->>6)::bigint
		FROM jsonb_array_elements($1::jsonb) r ORDER BY 1, 2, 3, 4, 5, 6
		ON CONFLICT (journey_id, version, day, step_id, channel, status) DO UPDATE SET n = t.n + excluded.n`

	reportConversionsDeleteQuery = `DELETE FROM report_conversions WHERE enrollment_id = ANY($1)`
	// reportConversionsPutQuery writes the report_conversions rows of the
	// converted enrollments of an array of ids, from their rows.
	reportConversionsPutQuery = `INSERT INTO report_conversions (enrollment_id, journey_id, version, entered_at, held_out,
			converted_at, steps, touches)
		SELECT e.id, e.journey_id, e.version, e.entered_at, e.held_out, coalesce(e.ended_at, e.updated_at),
			nudge_report_steps(e.id), nudge_report_touches(e.id)
		FROM enrollments e WHERE e.id = ANY($1) AND e.state = 'converted'`
	reportTouchesQuery = `UPDATE report_conversions SET touches = nudge_report_touches(enrollment_id)
		WHERE enrollment_id = ANY($1)`
)

// reportBefore reads, in a commit's transaction before it writes, the
// enrollments c names as the counters know them, with the queued messages
// it cancels (locked), and the idempotency keys of its messages that are
// stored already (those it will skip): one round trip.
func reportBefore(ctx context.Context, tx pgx.Tx, c *nudge.EngineCommit) (map[string]*reportcount.Enrollment, map[string]bool, error) {
	ids := reportcount.IDs(c)
	before := make(map[string]*reportcount.Enrollment, len(ids))
	stored := map[string]bool{}
	if len(ids) == 0 && len(c.Messages) == 0 {
		return before, stored, nil
	}
	var b pgx.Batch
	if len(ids) > 0 {
		readEnrollments(&b, ids, before)
	}
	if len(c.CancelMessages) > 0 {
		b.Queue(reportQueuedQuery, c.CancelMessages).Query(func(rows pgx.Rows) error {
			var id, step, channel string
			_, err := pgx.ForEachRow(rows, []any{&id, &step, &channel}, func() error {
				if e := before[id]; e != nil {
					e.Queue(step, channel)
				}
				return nil
			})
			return err
		})
	}
	if len(c.Messages) > 0 {
		keys := make([]string, len(c.Messages))
		for i, m := range c.Messages {
			keys[i] = m.IdempotencyKey
		}
		b.Queue(reportKeysQuery, keys).Query(func(rows pgx.Rows) error {
			var k string
			_, err := pgx.ForEachRow(rows, []any{&k}, func() error {
				stored[k] = true
				return nil
			})
			return err
		})
	}
	if err := runBatch(ctx, tx, &b); err != nil {
		return nil, nil, err
	}
	return before, stored, nil
}

// readEnrollments queues the reads of the enrollments ids as the counters
// know them, into before.
func readEnrollments(b *pgx.Batch, ids []string, before map[string]*reportcount.Enrollment) {
	b.Queue(reportEnrollmentsQuery, ids).Query(func(rows pgx.Rows) error {
		var (
			id string
			e  reportcount.Enrollment
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &e.Journey, &e.Version, &e.Day, &e.HeldOut, &e.State}, func() error {
			a := e
			before[id] = &a
			return nil
		})
		return err
	})
	b.Queue(reportDecisionsQuery, ids).Query(func(rows pgx.Rows) error {
		var (
			id string
			d  [4]string
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &d[0], &d[1], &d[2], &d[3]}, func() error {
			if e := before[id]; e != nil {
				e.Decisions = append(e.Decisions, d)
			}
			return nil
		})
		return err
	})
}

// reportAfter queues, after a commit's writes, the statements that move
// the counters from what the enrollments c names counted before it to what
// they count after it, count the messages it inserts (all but those whose
// keys were stored) and rewrite the report_conversions rows of the
// enrollments converted before or after it.
func reportAfter(b *pgx.Batch, c *nudge.EngineCommit, before map[string]*reportcount.Enrollment, stored map[string]bool,
	now time.Time) error {
	r, after, converted := reportcount.Commit(c, before, now)
	cancelled := map[string]bool{}
	for _, id := range c.CancelMessages {
		cancelled[id] = true
	}
	for _, m := range c.Messages {
		a := after[m.EnrollmentID]
		if a == nil || stored[m.IdempotencyKey] {
			continue
		}
		status := cmp.Or(m.Status, nudge.MessageQueued)
		if status == nudge.MessageQueued && cancelled[m.EnrollmentID] {
			status = nudge.MessageCancelled
		}
		r.AddMessage(a, m.StepID, m.Channel, status, 1)
	}
	if err := queueDeltas(b, r); err != nil {
		return err
	}
	if len(converted) > 0 {
		b.Queue(reportConversionsDeleteQuery, converted)
		b.Queue(reportConversionsPutQuery, converted)
	}
	return nil
}

// queueDeltas queues the statements that add r to the counters, in the
// order of the tables every writer adds to them in.
func queueDeltas(b *pgx.Batch, r *reportcount.Deltas) error {
	cohorts, outcomes, paths, messages, err := r.Rows()
	if err != nil {
		return fmt.Errorf("report counts: %w", err)
	}
	for _, w := range [][2]string{{reportCohortsAddQuery, cohorts}, {reportOutcomesAddQuery, outcomes},
		{reportPathsAddQuery, paths}, {reportMessagesAddQuery, messages}} {
		if w[1] != "" {
			b.Queue(w[0], w[1])
		}
	}
	return nil
}

// queueMoves queues the statements that apply a MessageUpdate call's
// moves between the counters, and rewrite the touches they change.
func queueMoves(b *pgx.Batch, s *reportcount.Moves) error {
	rows, err := reportcount.MessageRows(s.Messages)
	if err != nil {
		return fmt.Errorf("report counts: %w", err)
	}
	if rows != "" {
		b.Queue(reportMessagesAddQuery, rows)
	}
	if len(s.Touched) > 0 {
		b.Queue(reportTouchesQuery, s.Touched)
	}
	return nil
}

// reportErase takes out, in an erasure's transaction before it deletes,
// what a contact's enrollments count.
func reportErase(ctx context.Context, tx pgx.Tx, contact string) error {
	var ids []string
	rows, err := tx.Query(ctx, `SELECT id FROM enrollments WHERE contact_id = $1`, contact)
	if err != nil {
		return err
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(ids) == 0 {
		return err
	}
	before := map[string]*reportcount.Enrollment{}
	r := reportcount.NewDeltas()
	var b pgx.Batch
	readEnrollments(&b, ids, before)
	b.Queue(reportErasedMessagesQuery, ids).Query(func(rows pgx.Rows) error {
		var (
			id, step, channel, status string
			n                         int64
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &step, &channel, &status, &n}, func() error {
			if e := before[id]; e != nil {
				r.AddMessage(e, step, channel, status, -n)
			}
			return nil
		})
		return err
	})
	if err := runBatch(ctx, tx, &b); err != nil {
		return err
	}
	for _, e := range before {
		r.Add(e, -1)
	}
	b = pgx.Batch{}
	if err := queueDeltas(&b, r); err != nil {
		return err
	}
	b.Queue(reportConversionsDeleteQuery, ids)
	return runBatch(ctx, tx, &b)
}
