package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

// The engine's commits keep the report counters of migration 0013 for the
// enrollments, decisions and messages they write (and the messages they
// cancel), and the rows of report_conversions, once per commit: triggers
// per row made the drain's commits about twice as costly. MessageUpdate
// counts the status changes it makes once per call (reportcount.Moves; migration
// 0014 dropped the trigger that counted each). Erasure is counted by the
// triggers of migration 0013.

const (
	reportEnrollmentsQuery = `SELECT id, journey_id, version, entered_at, held_out, state FROM enrollments
		WHERE id IN (SELECT value FROM json_each(?))`
	reportDecisionsQuery = `SELECT enrollment_id, step_id, channel, outcome, reason FROM decisions
		WHERE enrollment_id IN (SELECT value FROM json_each(?)) ORDER BY enrollment_id, id`
	reportInsertedQuery = `SELECT enrollment_id, step_id, channel, status FROM messages WHERE rowid BETWEEN ? AND ?`
	// reportQueuedQuery reads the messages messagesCancelQuery cancels.
	reportQueuedQuery = `SELECT enrollment_id, step_id, channel FROM messages
		WHERE enrollment_id IN (SELECT value FROM json_each(?)) AND +status = 'queued'`
	reportCohortsAddQuery = `INSERT INTO report_cohorts (journey_id, version, day, held_out, state, reason, n)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
		FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET n = n + excluded.n`
	reportOutcomesAddQuery = `INSERT INTO report_outcomes (journey_id, version, day, step_id, channel, outcome, reason,
			decisions, enrollments)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8
		FROM json_each(?) WHERE true
		ON CONFLICT DO UPDATE SET decisions = decisions + excluded.decisions, enrollments = enrollments + excluded.enrollments`
	reportPathsAddQuery = `INSERT INTO report_paths (journey_id, version, day, step_id, sent, step_held, journey_held, converted, n)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8
		FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET n = n + excluded.n`
	reportMessagesAddQuery = `INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
		FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET n = n + excluded.n`
	// reportTouchesQuery rewrites the touches of the report_conversions
	// rows of a JSON array of enrollment ids.
	reportTouchesQuery = `UPDATE report_conversions SET touches = coalesce((SELECT group_concat(t, char(30)) FROM (
			SELECT m.step_id || char(31) || m.channel || char(31) || m.created_at AS t FROM messages m
			WHERE m.enrollment_id = report_conversions.enrollment_id AND m.status <> 'cancelled' ORDER BY m.created_at, m.id)), '')
		WHERE enrollment_id IN (SELECT value FROM json_each(?))`
	reportConversionsDeleteQuery = `DELETE FROM report_conversions WHERE enrollment_id IN (SELECT value FROM json_each(?))`
	// reportConversionsPutQuery writes the report_conversions rows of the
	// converted enrollments of a JSON array of ids, from their rows.
	reportConversionsPutQuery = `INSERT INTO report_conversions (enrollment_id, journey_id, version, entered_at, held_out,
			converted_at, steps, touches)
		SELECT e.id, e.journey_id, e.version, e.entered_at, e.held_out, coalesce(e.ended_at, e.updated_at),
			coalesce((SELECT group_concat(step_id) FROM (SELECT DISTINCT d.step_id FROM decisions d
				WHERE d.enrollment_id = e.id AND d.step_id <> '' ORDER BY 1)), ''),
			coalesce((SELECT group_concat(t, char(30)) FROM (SELECT m.step_id || char(31) || m.channel || char(31) || m.created_at AS t
				FROM messages m WHERE m.enrollment_id = e.id AND m.status <> 'cancelled' ORDER BY m.created_at, m.id)), '')
		FROM enrollments e WHERE e.id IN (SELECT value FROM json_each(?)) AND e.state = 'converted'`
)

// reportStmts are the statements that keep the counters in EngineCommit, prepared
// on the writer before the commit's transaction takes it.
type reportStmts struct {
	enrollments, decisions, inserted   *sql.Stmt
	queued                             *sql.Stmt
	cohorts, outcomes, paths, messages *sql.Stmt
	conversionsDelete, conversionsPut  *sql.Stmt
}

// reportStmts returns the counters' statements of EngineCommit, prepared
// once with the writer's others (writeStmts). On a slim store (Slim) there
// are none, and nil counts nothing.
func (db *DB) reportStmts(ctx context.Context) (*reportStmts, error) {
	if db.noReports {
		return nil, nil
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, err
	}
	return &ws.report, nil
}

// before reads, in the commit's transaction before it writes, the
// enrollments c names as the counters know them, with the queued messages
// it cancels (see reportcount.Commit). The rows of the updates whose
// prior c gives are not read: the update fails unless the stored row is
// as the prior says (enrollmentsUpdateQuery).
func (rs *reportStmts) before(ctx context.Context, tx *sql.Tx, c *nudge.EngineCommit) (map[string]*reportcount.Enrollment, error) {
	if rs == nil {
		return nil, nil
	}
	ids := reportcount.IDs(c)
	before := make(map[string]*reportcount.Enrollment, len(ids))
	if len(ids) == 0 {
		return before, nil
	}
	for i, p := range c.Prior[:min(len(c.Prior), len(c.Enrollments))] {
		if e := c.Enrollments[i]; p != nil && e.Rev > 0 {
			before[e.ID] = &reportcount.Enrollment{Journey: p.JourneyID, Version: p.Version, Day: reportcount.Day(p.EnteredAt),
				HeldOut: p.HeldOut, State: p.State}
		}
	}
	read := ids
	if len(before) > 0 {
		read = make([]string, 0, len(ids)-len(before))
		for _, id := range ids {
			if before[id] == nil {
				read = append(read, id)
			}
		}
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	if len(read) > 0 {
		unread := arr
		if len(read) < len(ids) {
			if unread, err = jsonArray(read); err != nil {
				return nil, err
			}
		}
		if err := queryTx(ctx, tx, rs.enrollments, []any{unread}, func(rows *sql.Rows) error {
			var (
				id      string
				e       reportcount.Enrollment
				entered int64
			)
			if err := rows.Scan(&id, &e.Journey, &e.Version, &entered, &e.HeldOut, &e.State); err != nil {
				return err
			}
			e.Day = reportcount.DayOf(entered)
			before[id] = &e
			return nil
		}); err != nil {
			return nil, err
		}
	}
	err = queryTx(ctx, tx, rs.decisions, []any{arr}, func(rows *sql.Rows) error {
		var (
			id string
			d  [4]string
		)
		if err := rows.Scan(&id, &d[0], &d[1], &d[2], &d[3]); err != nil {
			return err
		}
		if e := before[id]; e != nil {
			e.Decisions = append(e.Decisions, d)
		}
		return nil
	})
	if err != nil || len(c.CancelMessages) == 0 {
		return before, err
	}
	cancel, err := jsonArray(c.CancelMessages)
	if err != nil {
		return nil, err
	}
	err = queryTx(ctx, tx, rs.queued, []any{cancel}, func(rows *sql.Rows) error {
		var id, step, channel string
		if err := rows.Scan(&id, &step, &channel); err != nil {
			return err
		}
		if e := before[id]; e != nil {
			e.Queue(step, channel)
		}
		return nil
	})
	return before, err
}

// after moves the counters from what the enrollments c names counted
// before it (see before) to what they count after it, counts the messages
// it inserted (rowids first to last; none if first is 0) with their status
// after it, from c's own when they are stored as given (asGiven), and
// writes the report_conversions rows of the enrollments converted before
// or after it.
func (rs *reportStmts) after(ctx context.Context, tx *sql.Tx, c *nudge.EngineCommit, before map[string]*reportcount.Enrollment,
	first, last int64, asGiven bool, now time.Time) error {
	if rs == nil || len(before) == 0 && len(c.Enrollments) == 0 {
		return nil
	}
	r, after, converted := reportcount.Commit(c, before, now)
	switch {
	case asGiven:
		// An empty status is stored as queued.
		for _, m := range c.Messages {
			if a := after[m.EnrollmentID]; a != nil {
				r.AddMessage(a, m.StepID, m.Channel, cmp.Or(m.Status, nudge.MessageQueued), 1)
			}
		}
	case first > 0:
		err := queryTx(ctx, tx, rs.inserted, []any{first, last}, func(rows *sql.Rows) error {
			var eid, step, channel, status string
			if err := rows.Scan(&eid, &step, &channel, &status); err != nil {
				return err
			}
			if a := after[eid]; a != nil {
				r.AddMessage(a, step, channel, status, 1)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	cohorts, outcomes, paths, messages, err := r.Rows()
	if err != nil {
		return err
	}
	for _, w := range []struct {
		s    *sql.Stmt
		rows string
	}{{rs.cohorts, cohorts}, {rs.outcomes, outcomes}, {rs.paths, paths}, {rs.messages, messages}} {
		if err := addCounts(ctx, tx, w.s, w.rows); err != nil {
			return err
		}
	}
	if len(converted) == 0 {
		return nil
	}
	arr, err := jsonArray(converted)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, rs.conversionsDelete).ExecContext(ctx, arr); err != nil {
		return fmt.Errorf("report conversions: %w", err)
	}
	if _, err := tx.StmtContext(ctx, rs.conversionsPut).ExecContext(ctx, arr); err != nil {
		return fmt.Errorf("report conversions: %w", err)
	}
	return nil
}

// statusStmts write reportcount.Moves.
type statusStmts struct{ messages, touches *sql.Stmt }

// statusStmts returns the statements of reportcount.Moves, prepared once
// with the writer's others (writeStmts). On a slim store (Slim) there are
// none, and nil counts nothing.
func (db *DB) statusStmts(ctx context.Context) (*statusStmts, error) {
	if db.noReports {
		return nil, nil
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, err
	}
	return &ws.status, nil
}

// write applies s in tx: one statement for the counters, and one for the
// touches if any changed.
func (ss *statusStmts) write(ctx context.Context, tx *sql.Tx, s *reportcount.Moves) error {
	if ss == nil {
		return nil
	}
	rows, err := reportcount.MessageRows(s.Messages)
	if err != nil {
		return err
	}
	if err := addCounts(ctx, tx, ss.messages, rows); err != nil {
		return err
	}
	if len(s.Touched) == 0 {
		return nil
	}
	arr, err := jsonArray(s.Touched)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, ss.touches).ExecContext(ctx, arr); err != nil {
		return fmt.Errorf("report conversions: %w", err)
	}
	return nil
}

// addCounts adds rows (a JSON array; none if empty) to a counter table
// with s, one of the report*AddQuery statements, in one statement.
func addCounts(ctx context.Context, tx *sql.Tx, s *sql.Stmt, rows string) error {
	if rows == "" {
		return nil
	}
	if _, err := tx.StmtContext(ctx, s).ExecContext(ctx, rows); err != nil {
		return fmt.Errorf("report counts: %w", err)
	}
	return nil
}

// queryTx runs a prepared query in tx, scanning each row.
func queryTx(ctx context.Context, tx *sql.Tx, s *sql.Stmt, args []any, scan func(rows *sql.Rows) error) error {
	rows, err := tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	return scanRows(rows, err, scan)
}

// scanRows calls scan on each row of a query's result, closing it; err is
// the query's own error.
func scanRows(rows *sql.Rows, err error, scan func(rows *sql.Rows) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
