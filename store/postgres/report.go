package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

var _ nudge.ReportStore = (*DB)(nil)

// cohort is the WHERE clause selecting a report's enrollments (alias e) and
// its arguments.
func cohort(p *nudge.ReportParams, journey bool) (string, []any) {
	from, to := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if !p.From.IsZero() {
		from = utc(p.From)
	}
	if !p.To.IsZero() {
		to = utc(p.To)
	}
	q, args := "e.entered_at >= $1 AND e.entered_at < $2", []any{from, to}
	if journey {
		q += " AND e.journey_id = $3"
		args = append(args, p.JourneyID)
		if p.Version > 0 {
			q += " AND e.version = $4"
			args = append(args, p.Version)
		}
	}
	return q, args
}

// reportQuery runs one aggregate query on a reader, scanning each row.
func (db *DB) reportQuery(ctx context.Context, q string, args []any, scan func(rows pgx.Rows) error) error {
	rows, err := db.pool.Query(ctx, q, args...)
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

// ReportJourney reads a journey's counts per cohort day from the counters
// of migration 0013 for the whole days of the range and from the rows for
// the parts of days at its ends, its conversions from report_conversions,
// and what follows messages (clicks, replies, opt-outs) and contacts (stage
// changes) from the rows; the queries run at once on the pool.
func (db *DB) ReportJourney(ctx context.Context, p *nudge.ReportParams) (*nudge.ReportData, error) {
	if err := nudge.CheckReportParams(p, true); err != nil {
		return nil, err
	}
	if _, err := db.JourneyGet(ctx, p.JourneyID); err != nil {
		return nil, fmt.Errorf("postgres: report: %w", err)
	}
	w, args := cohort(p, true)
	d := &nudge.ReportData{Cohorts: []nudge.ReportCohort{}, Outcomes: []nudge.ReportOutcome{},
		Paths: []nudge.ReportPath{}, Messages: []nudge.ReportMessages{}, Actions: []nudge.ReportAction{},
		OptOuts: []nudge.ReportOptOut{}, Conversions: []nudge.ReportConversion{},
		Stages: []nudge.ReportStageMove{}, Customers: []nudge.ReportCustomer{}, ActionDelays: []nudge.ReportActionDelay{}}
	optedOut := map[[2]string]int64{} // step, channel: messages followed by an opt-out
	queries := []reportQuery{
		{"actions", `SELECT m.step_id, m.channel, ev.name, count(DISTINCT m.id)
			FROM events ev JOIN messages m ON m.id = ev.properties->>'message_id'
				AND m.contact_id = ev.contact_id
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE ev.name IN ('email.clicked', 'sms.clicked', 'sms.replied', 'email.complained') AND ` + w + `
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, args,
			func(rows pgx.Rows) error {
				var a nudge.ReportAction
				err := rows.Scan(&a.StepID, &a.Channel, &a.Name, &a.Messages)
				d.Actions = append(d.Actions, a)
				return err
			}},
		{"opt-outs", `SELECT m.step_id, m.channel, count(DISTINCT m.id) FROM ` + optOutsJoin + ` AND ` + w + `
			GROUP BY 1, 2`, args,
			func(rows pgx.Rows) error {
				var (
					step, ch string
					n        int64
				)
				err := rows.Scan(&step, &ch, &n)
				optedOut[[2]string{step, ch}] = n
				return err
			}},
		{"action delays", `SELECT step_id, channel, action, minutes, count(*) FROM (
				SELECT m.step_id, m.channel, CASE ev.name WHEN 'sms.replied' THEN 'reply' ELSE 'click' END AS action,
					greatest(0, floor(extract(epoch FROM min(ev.timestamp) - m.created_at) / 60))::bigint AS minutes
				FROM events ev JOIN messages m ON m.id = ev.properties->>'message_id'
					AND m.contact_id = ev.contact_id
				JOIN enrollments e ON e.id = m.enrollment_id
				WHERE ev.name IN ('email.clicked', 'sms.clicked', 'sms.replied') AND ` + w + `
				GROUP BY m.id, m.step_id, m.channel, 3) x
			GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, args,
			func(rows pgx.Rows) error {
				var a nudge.ReportActionDelay
				err := rows.Scan(&a.StepID, &a.Channel, &a.Action, &a.Minutes, &a.Count)
				d.ActionDelays = append(d.ActionDelays, a)
				return err
			}},
	}
	// The counts come in parts, each filling its own ReportData, summed
	// after: the counters for the whole days, the rows for the parts of
	// days at the ends.
	fromDay, toDay, edges := nudge.ReportDays(p)
	parts := make([]*nudge.ReportData, 1+len(edges))
	parts[0] = &nudge.ReportData{}
	queries = append(queries, countQueries(p, fromDay, toDay, parts[0])...)
	for i, e := range edges {
		parts[1+i] = &nudge.ReportData{}
		queries = append(queries, rowCountQueries(&e, parts[1+i])...)
	}
	jobs := make([]func() error, 0, len(queries)+2)
	for _, q := range queries {
		jobs = append(jobs, func() error {
			if err := db.reportQuery(ctx, q.q, q.args, q.scan); err != nil {
				return fmt.Errorf("postgres: report %s: %w", q.name, err)
			}
			return nil
		})
	}
	jobs = append(jobs, func() error {
		if err := db.reportConversions(ctx, p, d); err != nil {
			return fmt.Errorf("postgres: report conversions: %w", err)
		}
		return nil
	}, func() error {
		if err := db.reportStages(ctx, w, args, d); err != nil {
			return fmt.Errorf("postgres: report stages: %w", err)
		}
		return nil
	})
	if err := reportcount.RunAll(jobs); err != nil {
		return nil, err
	}
	reportcount.Merge(d, parts)
	d.OptOuts = nudge.ReportOptOutsOf(d.Messages, optedOut)
	return d, nil
}

// reportConversions reads the converted enrollments p selects, with the
// steps they reached and the messages they got, from report_conversions.
func (db *DB) reportConversions(ctx context.Context, p *nudge.ReportParams, d *nudge.ReportData) error {
	_, args := cohort(p, true)
	q := `SELECT held_out, entered_at, converted_at, steps, touches FROM report_conversions
		WHERE entered_at >= $1 AND entered_at < $2 AND journey_id = $3`
	if p.Version > 0 {
		q += ` AND version = $4`
	}
	return db.reportQuery(ctx, q+` ORDER BY journey_id, entered_at, enrollment_id`, args, func(rows pgx.Rows) error {
		var (
			c                  nudge.ReportConversion
			entered, converted time.Time
			steps, touches     string
		)
		if err := rows.Scan(&c.HeldOut, &entered, &converted, &steps, &touches); err != nil {
			return err
		}
		c.EnteredAt, c.ConvertedAt = entered.UTC(), converted.UTC()
		if err := reportcount.ParseConversion(&c, steps, touches); err != nil {
			return err
		}
		d.Conversions = append(d.Conversions, c)
		return nil
	})
}

// scan adapts a scan of reportcount to a query's rows.
func scan(f func(reportcount.Scanner) error) func(rows pgx.Rows) error {
	return func(rows pgx.Rows) error { return f(rows) }
}

// optOutsJoin joins the opt-outs (c) that count against a message to the
// messages (m) not cancelled before them (24 h for an SMS, 72 h for an
// email) and their enrollments (e): from the opt-outs, which are few
// (LATERAL: the planner, misled by a table's statistics, would start from
// the cohort). A WHERE clause on e follows it.
const optOutsJoin = `consent_ledger c CROSS JOIN LATERAL (SELECT m.id, m.step_id, m.channel, m.enrollment_id FROM messages m
		WHERE m.contact_id = c.contact_id AND m.channel = c.channel AND m.created_at <= c.occurred_at
			AND m.created_at > c.occurred_at - CASE c.channel WHEN 'sms' THEN interval '24 hours' ELSE interval '72 hours' END
			AND m.status <> 'cancelled') m
	JOIN enrollments e ON e.id = m.enrollment_id
	WHERE c.status = 'opted_out' AND c.channel IN ('sms', 'email')
		AND (c.source IN ('keyword', 'provider') OR c.channel = 'email' AND c.source = 'form')`

// reportQuery is one query of a report, with the scan of each of its rows.
type reportQuery struct {
	name string
	q    string
	args []any
	scan func(rows pgx.Rows) error
}

// countQueries read the counters of migration 0013 for p's journey (and
// version) over the cohort days [fromDay, toDay), into d.
func countQueries(p *nudge.ReportParams, fromDay, toDay int64, d *nudge.ReportData) []reportQuery {
	cohorts, outcomes, paths, messages := reportcount.Scans(d)
	w, args := "journey_id = $1 AND day >= $2 AND day < $3", []any{p.JourneyID, fromDay, toDay}
	if p.Version > 0 {
		w += " AND version = $4"
		args = append(args, p.Version)
	}
	return []reportQuery{
		{"cohort counts", `SELECT held_out, state, reason, sum(n)::bigint FROM report_cohorts
			WHERE ` + w + ` GROUP BY 1, 2, 3`, args,
			scan(cohorts)},
		{"outcome counts", `SELECT step_id, channel, outcome, reason, sum(decisions)::bigint, sum(enrollments)::bigint
			FROM report_outcomes WHERE ` + w + ` GROUP BY 1, 2, 3, 4`, args,
			scan(outcomes)},
		{"path counts", `SELECT step_id, sent, step_held, journey_held, converted, sum(n)::bigint
			FROM report_paths WHERE ` + w + ` GROUP BY 1, 2, 3, 4, 5`, args,
			scan(paths)},
		{"message counts", `SELECT step_id, channel, status, sum(n)::bigint
			FROM report_messages WHERE ` + w + ` GROUP BY 1, 2, 3`, args,
			scan(messages)},
	}
}

// rowCountQueries count what the counters of migration 0013 hold, from the
// rows, for the enrollments p selects (the part of a day at an end of a
// report's range), into d.
func rowCountQueries(p *nudge.ReportParams, d *nudge.ReportData) []reportQuery {
	cohorts, outcomes, paths, messages := reportcount.Scans(d)
	w, args := cohort(p, true)
	return []reportQuery{
		{"cohorts", `SELECT held_out, state, reason, count(*) FROM (
				SELECT e.held_out, e.state, coalesce((SELECT d.reason FROM decisions d
					WHERE d.enrollment_id = e.id AND d.enrollment_id <> '' AND d.outcome IN ('converted', 'exited', 'completed')
					ORDER BY d.id DESC LIMIT 1), '') AS reason
				FROM enrollments e WHERE ` + w + `) x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, args,
			scan(cohorts)},
		{"outcomes", `SELECT d.step_id, d.channel, d.outcome, d.reason, count(*), count(DISTINCT d.enrollment_id)
			FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, args,
			scan(outcomes)},
		{"paths", `SELECT step_id, sent, held, jheld, conv, count(*) FROM (
				SELECT d.step_id, bool_or(d.outcome = 'sent') AS sent, bool_or(d.outcome = 'held_out') AS held,
					bool_or(e.held_out) AS jheld, bool_or(e.state = 'converted') AS conv
				FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
				WHERE ` + w + ` AND d.step_id <> '' GROUP BY d.enrollment_id, d.step_id) x
			GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`, args,
			scan(paths)},
		{"messages", `SELECT m.step_id, m.channel, m.status, count(*)
			FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, args,
			scan(messages)},
	}
}

// ReportOverview counts every journey's cohort and messages sent from the
// counters of migration 0013 for the whole days of the range and from the
// rows for the parts of days at its ends, the messages followed by an
// opt-out from the opt-outs, which are few, and messages per contact per
// week over the messages queued in the range.
func (db *DB) ReportOverview(ctx context.Context, p *nudge.ReportParams) (*nudge.ReportOverviewData, error) {
	if err := nudge.CheckReportParams(p, false); err != nil {
		return nil, err
	}
	w, args := cohort(p, false)
	o := &nudge.ReportOverviewData{Journeys: []nudge.ReportJourneyCounts{}, PerWeek: []nudge.ReportWeekBucket{}}
	sum := reportcount.NewOverview(o)
	fromDay, toDay, edges := nudge.ReportDays(p)
	days := []any{fromDay, toDay}
	queries := []reportQuery{
		{"journeys", `SELECT id FROM journeys ORDER BY id`, nil, scan(sum.Journey)},
		{"cohort counts", `SELECT journey_id, held_out, state, sum(n)::bigint FROM report_cohorts
			WHERE day >= $1 AND day < $2 GROUP BY 1, 2, 3`, days, scan(sum.Cohort)},
		{"message counts", `SELECT journey_id, channel, sum(n)::bigint FROM report_messages
			WHERE day >= $1 AND day < $2 AND channel IN ('sms', 'email') AND status <> 'cancelled' GROUP BY 1, 2`, days, scan(sum.Sent)},
	}
	for _, e := range edges {
		w, args := cohort(&e, false)
		queries = append(queries,
			reportQuery{"cohorts", `SELECT e.journey_id, e.held_out, e.state, count(*) FROM enrollments e
				WHERE ` + w + ` GROUP BY 1, 2, 3`, args, scan(sum.Cohort)},
			reportQuery{"messages", `SELECT e.journey_id, m.channel, count(*)
				FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
				WHERE ` + w + ` AND m.channel IN ('sms', 'email') AND m.status <> 'cancelled' GROUP BY 1, 2`, args, scan(sum.Sent)})
	}
	queries = append(queries,
		reportQuery{"opt-outs", `SELECT e.journey_id, m.channel, count(DISTINCT m.id)
			FROM ` + optOutsJoin + ` AND ` + w + ` GROUP BY 1, 2`, args, scan(sum.Opted)},
		reportQuery{"complaints", `SELECT e.journey_id, m.channel, count(DISTINCT m.id)
			FROM events ev JOIN messages m ON m.id = ev.properties->>'message_id' AND m.contact_id = ev.contact_id
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE ev.name = 'email.complained' AND ` + w + ` GROUP BY 1, 2`, args, scan(sum.Complained)})
	for _, q := range queries {
		if err := db.reportQuery(ctx, q.q, q.args, q.scan); err != nil {
			return nil, fmt.Errorf("postgres: report overview %s: %w", q.name, err)
		}
	}
	sum.Done()
	from, to := args[0], args[1]
	week := int64(7 * 24 * 3600)
	err := db.reportQuery(ctx, `SELECT n, count(*) FROM (
			SELECT count(*) AS n FROM messages
			WHERE created_at >= $1 AND created_at < $2 AND status <> 'cancelled'
			GROUP BY contact_id, floor(extract(epoch FROM created_at) / $3)) x
		GROUP BY 1 ORDER BY 1`, []any{from, to, week},
		func(rows pgx.Rows) error {
			var b nudge.ReportWeekBucket
			err := rows.Scan(&b.Messages, &b.Contacts)
			o.PerWeek = append(o.PerWeek, b)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: report overview: %w", err)
	}
	return o, nil
}

// Analyze vacuums the store's tables and refreshes the planner's
// statistics of them, as autovacuum does after enough writes: for a server
// that runs without it, after a bulk load (the report and drain
// benchmarks' seeds). Without statistics the planner takes a fresh table
// for empty and may walk a million rows where an index would read ten;
// without VACUUM a table the load filled and emptied (the inbox) stays
// its full size for a sequential scan. Only the tables of the store's
// schema: others on the server are not its business.
func (db *DB) Analyze(ctx context.Context) error {
	var tables []string
	rows, err := db.pool.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
		WHERE schemaname = current_schema() ORDER BY tablename`)
	if err == nil {
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return wrap("analyze", err)
	}
	if len(tables) == 0 {
		return nil
	}
	_, err = db.pool.Exec(ctx, `VACUUM (ANALYZE) `+strings.Join(tables, ", "))
	return wrap("analyze", err)
}
