package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nudge/nudge"
)

// The engine's commits keep the report counters of migration 0013 for the
// enrollments, decisions and messages they write (and the messages they
// cancel), and the rows of report_conversions, once per commit: triggers
// per row made the drain's commits about twice as costly. MessageUpdate
// counts the status changes it makes once per call (statusMoves; migration
// 0014 dropped the trigger that counted each). Erasure is counted by the
// triggers of migration 0013.

// reportEnrollment is what the counters know of an enrollment: its row and
// its decisions (step, channel, outcome, reason), oldest first.
type reportEnrollment struct {
	journey   string
	version   int64
	day       int64
	heldOut   bool
	state     string
	decisions [][4]string
	// queued are its queued messages by step and channel, if the commit
	// cancels them.
	queued map[[2]string]int64
}

type (
	cohortKey struct {
		journey       string
		version, day  int64
		heldOut       bool
		state, reason string
	}
	outcomeKey struct {
		journey                        string
		version, day                   int64
		step, channel, outcome, reason string
	}
	messageKey struct {
		journey               string
		version, day          int64
		step, channel, status string
	}
	pathKey struct {
		journey                            string
		version, day                       int64
		step                               string
		sent, held, journeyHeld, converted bool
	}
)

// reportDeltas are the changes of a commit to the counters.
type reportDeltas struct {
	cohorts  map[cohortKey]int64
	outcomes map[outcomeKey][2]int64 // decisions, enrollments
	paths    map[pathKey]int64
	messages map[messageKey]int64
}

// add counts what e counts (k = 1) or takes it out (k = -1).
func (r *reportDeltas) add(e *reportEnrollment, k int64) {
	reason := ""
	kinds := map[[4]string]bool{}
	type flags struct{ sent, held bool }
	steps := map[string]flags{}
	for _, d := range e.decisions {
		if d[2] == nudge.OutcomeConverted || d[2] == nudge.OutcomeExited || d[2] == nudge.OutcomeCompleted {
			reason = d[3]
		}
		o := outcomeKey{e.journey, e.version, e.day, d[0], d[1], d[2], d[3]}
		v := r.outcomes[o]
		v[0] += k
		if !kinds[d] {
			kinds[d] = true
			v[1] += k
		}
		r.outcomes[o] = v
		if d[0] != "" {
			f := steps[d[0]]
			f.sent = f.sent || d[2] == nudge.OutcomeSent
			f.held = f.held || d[2] == nudge.OutcomeHeldOut
			steps[d[0]] = f
		}
	}
	r.cohorts[cohortKey{e.journey, e.version, e.day, e.heldOut, e.state, reason}] += k
	for step, f := range steps {
		r.paths[pathKey{e.journey, e.version, e.day, step, f.sent, f.held, e.heldOut, e.state == nudge.EnrollmentConverted}] += k
	}
}

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

// On a slim store (Slim) there are none, and nil counts nothing.
func (db *DB) reportStmts(ctx context.Context) (*reportStmts, error) {
	if db.noReports {
		return nil, nil
	}
	var r reportStmts
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{{&r.enrollments, reportEnrollmentsQuery}, {&r.decisions, reportDecisionsQuery}, {&r.inserted, reportInsertedQuery},
		{&r.queued, reportQueuedQuery},
		{&r.cohorts, reportCohortsAddQuery}, {&r.outcomes, reportOutcomesAddQuery}, {&r.paths, reportPathsAddQuery},
		{&r.messages, reportMessagesAddQuery}, {&r.conversionsDelete, reportConversionsDeleteQuery},
		{&r.conversionsPut, reportConversionsPutQuery}} {
		s, err := db.stmt(ctx, p.q)
		if err != nil {
			return nil, err
		}
		*p.s = s
	}
	return &r, nil
}

// before reads, in the commit's transaction before it writes,
// the enrollments c names (its own, those of its decisions and messages
// and those whose messages it cancels) as the counters know them, with the
// queued messages it cancels.
func (rs *reportStmts) before(ctx context.Context, tx *sql.Tx, c *nudge.EngineCommit) (map[string]*reportEnrollment, error) {
	if rs == nil {
		return nil, nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, e := range c.Enrollments {
		if !seen[e.ID] {
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	for _, d := range c.Decisions {
		if d.EnrollmentID != "" && !seen[d.EnrollmentID] {
			seen[d.EnrollmentID] = true
			ids = append(ids, d.EnrollmentID)
		}
	}
	for _, m := range c.Messages {
		if m.EnrollmentID != "" && !seen[m.EnrollmentID] {
			seen[m.EnrollmentID] = true
			ids = append(ids, m.EnrollmentID)
		}
	}
	for _, id := range c.CancelMessages {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	before := make(map[string]*reportEnrollment, len(ids))
	if len(ids) == 0 {
		return before, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	if err := queryTx(ctx, tx, rs.enrollments, []any{arr}, func(rows *sql.Rows) error {
		var (
			id      string
			e       reportEnrollment
			entered int64
		)
		if err := rows.Scan(&id, &e.journey, &e.version, &entered, &e.heldOut, &e.state); err != nil {
			return err
		}
		e.day = dayOf(entered)
		before[id] = &e
		return nil
	}); err != nil {
		return nil, err
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
			e.decisions = append(e.decisions, d)
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
			if e.queued == nil {
				e.queued = map[[2]string]int64{}
			}
			e.queued[[2]string{step, channel}]++
		}
		return nil
	})
	return before, err
}

// after moves the counters from what the enrollments c names
// counted before it (see before) to what they count after it, counts the
// messages it inserted (rowids first to last; none if first is 0) with
// their status after it, moves the queued messages it cancelled, and
// writes the report_conversions rows of
// the enrollments converted before or after it. An enrollment that exists
// neither before nor in c counts nothing, as in a report, which joins
// decisions and messages to their enrollment.
func (rs *reportStmts) after(ctx context.Context, tx *sql.Tx, c *nudge.EngineCommit, before map[string]*reportEnrollment,
	first, last int64, now time.Time) error {
	if rs == nil || len(before) == 0 && len(c.Enrollments) == 0 {
		return nil
	}
	after := make(map[string]*reportEnrollment, len(before)+len(c.Enrollments))
	for id, e := range before {
		a := *e
		a.decisions = e.decisions[:len(e.decisions):len(e.decisions)]
		after[id] = &a
	}
	for _, e := range c.Enrollments {
		a := after[e.ID]
		if a == nil {
			entered := e.EnteredAt
			if entered.IsZero() {
				entered = now
			}
			a = &reportEnrollment{journey: e.JourneyID, version: e.Version, day: dayOf(micros(entered))}
			after[e.ID] = a
		}
		a.heldOut, a.state = e.HeldOut, e.State
	}
	for _, d := range c.Decisions {
		if a := after[d.EnrollmentID]; a != nil {
			a.decisions = append(a.decisions, [4]string{d.StepID, d.Channel, d.Outcome, d.Reason})
		}
	}
	r := &reportDeltas{cohorts: map[cohortKey]int64{}, outcomes: map[outcomeKey][2]int64{}, paths: map[pathKey]int64{},
		messages: map[messageKey]int64{}}
	var converted []string
	for id, a := range after {
		b := before[id]
		if b != nil {
			r.add(b, -1)
			for k, n := range b.queued {
				r.messages[messageKey{b.journey, b.version, b.day, k[0], k[1], nudge.MessageQueued}] -= n
				r.messages[messageKey{b.journey, b.version, b.day, k[0], k[1], nudge.MessageCancelled}] += n
			}
		}
		r.add(a, 1)
		if a.state == nudge.EnrollmentConverted || b != nil && b.state == nudge.EnrollmentConverted {
			converted = append(converted, id)
		}
	}
	if first > 0 {
		err := queryTx(ctx, tx, rs.inserted, []any{first, last}, func(rows *sql.Rows) error {
			var eid, step, channel, status string
			if err := rows.Scan(&eid, &step, &channel, &status); err != nil {
				return err
			}
			if a := after[eid]; a != nil {
				r.messages[messageKey{a.journey, a.version, a.day, step, channel, status}]++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var cohorts, outcomes, paths, messages [][]any
	for k, n := range r.cohorts {
		if n != 0 {
			cohorts = append(cohorts, []any{k.journey, k.version, k.day, k.heldOut, k.state, k.reason, n})
		}
	}
	for k, n := range r.outcomes {
		if n != [2]int64{} {
			outcomes = append(outcomes, []any{k.journey, k.version, k.day, k.step, k.channel, k.outcome, k.reason, n[0], n[1]})
		}
	}
	for k, n := range r.paths {
		if n != 0 {
			paths = append(paths, []any{k.journey, k.version, k.day, k.step, k.sent, k.held, k.journeyHeld, k.converted, n})
		}
	}
	messages = messageRows(r.messages)
	for _, w := range []struct {
		s    *sql.Stmt
		rows [][]any
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

// reportMessage is what the counters know of a message: its enrollment,
// and the report_messages key of its status.
type reportMessage struct {
	enrollment string
	key        messageKey
}

// statusMoves are the moves of a call's messages between the
// report_messages counters of their statuses, and the enrollments whose
// report_conversions touches change (a message cancelled, or no longer).
type statusMoves struct {
	messages map[messageKey]int64
	touched  []string
}

// move counts m, counted as it was, at status now.
func (s *statusMoves) move(m reportMessage, now string) {
	if m.key.status == now {
		return
	}
	if s.messages == nil {
		s.messages = map[messageKey]int64{}
	}
	s.messages[m.key]--
	k := m.key
	k.status = now
	s.messages[k]++
	if m.key.status == nudge.MessageCancelled || now == nudge.MessageCancelled {
		s.touched = append(s.touched, m.enrollment)
	}
}

// statusStmts write statusMoves.
type statusStmts struct{ messages, touches *sql.Stmt }

// statusStmts prepares the statements of statusMoves on the writer.
func (db *DB) statusStmts(ctx context.Context) (*statusStmts, error) {
	m, err := db.stmt(ctx, reportMessagesAddQuery)
	if err != nil {
		return nil, err
	}
	t, err := db.stmt(ctx, reportTouchesQuery)
	if err != nil {
		return nil, err
	}
	return &statusStmts{m, t}, nil
}

// write applies s in tx: one statement for the counters, and one for the
// touches if any changed.
func (ss *statusStmts) write(ctx context.Context, tx *sql.Tx, s *statusMoves) error {
	if err := addCounts(ctx, tx, ss.messages, messageRows(s.messages)); err != nil {
		return err
	}
	if len(s.touched) == 0 {
		return nil
	}
	arr, err := jsonArray(s.touched)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, ss.touches).ExecContext(ctx, arr); err != nil {
		return fmt.Errorf("report conversions: %w", err)
	}
	return nil
}

// messageRows are the report_messages rows of counts, as addCounts takes
// them.
func messageRows(counts map[messageKey]int64) [][]any {
	var rows [][]any
	for k, n := range counts {
		if n != 0 {
			rows = append(rows, []any{k.journey, k.version, k.day, k.step, k.channel, k.status, n})
		}
	}
	return rows
}

// addCounts adds rows to a counter table with s, one of the report*AddQuery
// statements, in one statement; none if rows is empty.
func addCounts(ctx context.Context, tx *sql.Tx, s *sql.Stmt, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s).ExecContext(ctx, string(b)); err != nil {
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

// dayOf is the cohort day of a time in Unix microseconds, as migration
// 0013 counts it.
func dayOf(us int64) int64 { return us / 86400000000 }
