package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

var _ nudge.ReportStore = (*DB)(nil)

// cohort is the WHERE clause selecting a report's enrollments (alias e) and
// its arguments.
func cohort(p *nudge.ReportParams, journey bool) (string, []any) {
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !p.From.IsZero() {
		from = micros(p.From)
	}
	if !p.To.IsZero() {
		to = micros(p.To)
	}
	q, args := "e.entered_at >= ? AND e.entered_at < ?", []any{from, to}
	if journey {
		q += " AND e.journey_id = ?"
		args = append(args, p.JourneyID)
		if p.Version > 0 {
			q += " AND e.version = ?"
			args = append(args, p.Version)
		}
	}
	return q, args
}

// reportQuery runs one aggregate query on a reader, scanning each row.
func (db *DB) reportQuery(ctx context.Context, q string, args []any, scan func(rows *sql.Rows) error) error {
	rows, err := db.read.QueryContext(ctx, q, args...)
	return scanRows(rows, err, scan)
}

// ReportJourney reads a journey's counts per cohort day from the counters
// of migration 0013 for the whole days of the range and from the rows for
// the parts of days at its ends, its conversions from report_conversions,
// and what follows messages (clicks, replies, opt-outs) and contacts (stage
// changes) from the rows; each query on the read pool.
func (db *DB) ReportJourney(ctx context.Context, p *nudge.ReportParams) (*nudge.ReportData, error) {
	if err := nudge.CheckReportParams(p, true); err != nil {
		return nil, err
	}
	if _, err := db.JourneyGet(ctx, p.JourneyID); err != nil {
		return nil, fmt.Errorf("sqlite: report: %w", err)
	}
	w, args := cohort(p, true)
	d := &nudge.ReportData{Cohorts: []nudge.ReportCohort{}, Outcomes: []nudge.ReportOutcome{},
		Paths: []nudge.ReportPath{}, Messages: []nudge.ReportMessages{}, Actions: []nudge.ReportAction{},
		OptOuts: []nudge.ReportOptOut{}, Conversions: []nudge.ReportConversion{},
		Stages: []nudge.ReportStageMove{}, Customers: []nudge.ReportCustomer{}, ActionDelays: []nudge.ReportActionDelay{}}
	optedOut := map[[2]string]int64{} // step, channel: messages followed by an opt-out
	queries := []reportQuery{
		{"actions", `SELECT m.step_id, m.channel, ev.name, count(DISTINCT m.id)
			FROM events ev JOIN messages m ON m.id = json_extract(ev.properties, '$.message_id')
				AND m.contact_id = ev.contact_id
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE ev.name IN ('email.clicked', 'sms.clicked', 'sms.replied', 'email.complained') AND ` + w + `
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, args,
			func(rows *sql.Rows) error {
				var a nudge.ReportAction
				err := rows.Scan(&a.StepID, &a.Channel, &a.Name, &a.Messages)
				d.Actions = append(d.Actions, a)
				return err
			}},
		// From the opt-outs, which are few, to the messages before them:
		// CROSS JOIN keeps SQLite's planner from going from the cohort.
		{"opt-outs", `SELECT m.step_id, m.channel, count(DISTINCT m.id) FROM ` + optOutsJoin + ` AND ` + w + `
			GROUP BY 1, 2`, args,
			func(rows *sql.Rows) error {
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
					max(0, (min(ev.timestamp) - m.created_at) / 60000000) AS minutes
				FROM events ev JOIN messages m ON m.id = json_extract(ev.properties, '$.message_id')
					AND m.contact_id = ev.contact_id
				JOIN enrollments e ON e.id = m.enrollment_id
				WHERE ev.name IN ('email.clicked', 'sms.clicked', 'sms.replied') AND ` + w + `
				GROUP BY m.id, 3)
			GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, args,
			func(rows *sql.Rows) error {
				var a nudge.ReportActionDelay
				err := rows.Scan(&a.StepID, &a.Channel, &a.Action, &a.Minutes, &a.Count)
				d.ActionDelays = append(d.ActionDelays, a)
				return err
			}},
	}
	// The counts come in parts, each filling its own ReportData, summed
	// after.
	fromDay, toDay, edges := nudge.ReportDays(p)
	parts := make([]*nudge.ReportData, 1+len(edges))
	parts[0] = &nudge.ReportData{}
	queries = append(queries, countQueries(p, fromDay, toDay, parts[0])...)
	for i, e := range edges {
		parts[1+i] = &nudge.ReportData{}
		queries = append(queries, rowCountQueries(&e, parts[1+i])...)
	}
	// Each query fills its own fields of d, on its own reader: WAL lets
	// them run at once.
	jobs := make([]func() error, 0, len(queries)+2)
	for _, q := range queries {
		jobs = append(jobs, func() error {
			if err := db.reportQuery(ctx, q.q, q.args, q.scan); err != nil {
				return fmt.Errorf("sqlite: report %s: %w", q.name, err)
			}
			return nil
		})
	}
	jobs = append(jobs, func() error {
		if err := db.reportConversions(ctx, p, d); err != nil {
			return fmt.Errorf("sqlite: report conversions: %w", err)
		}
		return nil
	}, func() error {
		if err := db.reportStages(ctx, w, args, d); err != nil {
			return fmt.Errorf("sqlite: report stages: %w", err)
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

// scan adapts a scan of reportcount to a query's rows.
func scan(f func(reportcount.Scanner) error) func(rows *sql.Rows) error {
	return func(rows *sql.Rows) error { return f(rows) }
}

// optOutsJoin joins the opt-outs (c) that count against a message to the
// messages (m) not cancelled before them (24 h for an SMS, 72 h for an
// email) and their enrollments (e): from the opt-outs, which are few (CROSS
// JOIN keeps SQLite's planner from going from the cohort). A WHERE clause
// on e follows it.
const optOutsJoin = `consent_ledger c CROSS JOIN messages m ON m.contact_id = c.contact_id AND m.channel = c.channel
		AND m.created_at <= c.occurred_at AND m.created_at > c.occurred_at - CASE c.channel WHEN 'sms' THEN 86400000000 ELSE 259200000000 END
	CROSS JOIN enrollments e ON e.id = m.enrollment_id
	WHERE c.status = 'opted_out' AND c.channel IN ('sms', 'email')
		AND (c.source IN ('keyword', 'provider') OR c.channel = 'email' AND c.source = 'form')
		AND m.status <> 'cancelled'`

// reportQuery is one query of a report, with the scan of each of its rows.
type reportQuery struct {
	name string
	q    string
	args []any
	scan func(rows *sql.Rows) error
}

// countQueries read the counters of migration 0013 for p's journey (and
// version) over the cohort days [fromDay, toDay), into d.
func countQueries(p *nudge.ReportParams, fromDay, toDay int64, d *nudge.ReportData) []reportQuery {
	cohorts, outcomes, paths, messages := reportcount.Scans(d)
	w, args := "journey_id = ? AND day >= ? AND day < ?", []any{p.JourneyID, fromDay, toDay}
	if p.Version > 0 {
		w += " AND version = ?"
		args = append(args, p.Version)
	}
	return []reportQuery{
		{"cohort counts", `SELECT held_out, state, reason, sum(n) FROM report_cohorts
			WHERE ` + w + ` GROUP BY 1, 2, 3`, args,
			scan(cohorts)},
		{"outcome counts", `SELECT step_id, channel, outcome, reason, sum(decisions), sum(enrollments)
			FROM report_outcomes WHERE ` + w + ` GROUP BY 1, 2, 3, 4`, args,
			scan(outcomes)},
		{"path counts", `SELECT step_id, sent, step_held, journey_held, converted, sum(n)
			FROM report_paths WHERE ` + w + ` GROUP BY 1, 2, 3, 4, 5`, args,
			scan(paths)},
		{"message counts", `SELECT step_id, channel, status, sum(n)
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
		{"cohorts", `SELECT e.held_out, e.state, coalesce((SELECT d.reason FROM decisions d
				WHERE d.enrollment_id = e.id AND d.outcome IN ('converted', 'exited', 'completed')
				ORDER BY d.id DESC LIMIT 1), ''), count(*)
			FROM enrollments e WHERE ` + w + ` GROUP BY 1, 2, 3`, args,
			scan(cohorts)},
		{"outcomes", `SELECT d.step_id, d.channel, d.outcome, d.reason, count(*), count(DISTINCT d.enrollment_id)
			FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3, 4`, args,
			scan(outcomes)},
		{"paths", `SELECT step_id, sent, held, jheld, conv, count(*) FROM (
				SELECT d.step_id, max(d.outcome = 'sent') AS sent, max(d.outcome = 'held_out') AS held,
					e.held_out AS jheld, e.state = 'converted' AS conv
				FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
				WHERE ` + w + ` AND d.step_id <> '' GROUP BY d.enrollment_id, d.step_id)
			GROUP BY 1, 2, 3, 4, 5`, args,
			scan(paths)},
		{"messages", `SELECT m.step_id, m.channel, m.status, count(*)
			FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3`, args,
			scan(messages)},
	}
}

// reportConversions reads the converted enrollments p selects, with the
// steps they reached and the messages they got, from report_conversions
// (kept with the counters of migration 0013).
func (db *DB) reportConversions(ctx context.Context, p *nudge.ReportParams, d *nudge.ReportData) error {
	_, args := cohort(p, true)
	q := `SELECT held_out, entered_at, converted_at, steps, touches FROM report_conversions
		WHERE entered_at >= ? AND entered_at < ? AND journey_id = ?`
	if p.Version > 0 {
		q += ` AND version = ?`
	}
	return db.reportQuery(ctx, q+` ORDER BY journey_id, entered_at, enrollment_id`, args, func(rows *sql.Rows) error {
		var (
			c                  nudge.ReportConversion
			entered, converted int64
			steps, touches     string
		)
		if err := rows.Scan(&c.HeldOut, &entered, &converted, &steps, &touches); err != nil {
			return err
		}
		c.EnteredAt, c.ConvertedAt = fromMicros(entered), fromMicros(converted)
		if err := reportcount.ParseConversion(&c, steps, touches); err != nil {
			return err
		}
		d.Conversions = append(d.Conversions, c)
		return nil
	})
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
		{"cohort counts", `SELECT journey_id, held_out, state, sum(n) FROM report_cohorts
			WHERE day >= ? AND day < ? GROUP BY 1, 2, 3`, days, scan(sum.Cohort)},
		{"message counts", `SELECT journey_id, channel, sum(n) FROM report_messages
			WHERE day >= ? AND day < ? AND channel IN ('sms', 'email') AND status <> 'cancelled' GROUP BY 1, 2`, days, scan(sum.Sent)},
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
			FROM events ev JOIN messages m ON m.id = json_extract(ev.properties, '$.message_id') AND m.contact_id = ev.contact_id
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE ev.name = 'email.complained' AND ` + w + ` GROUP BY 1, 2`, args, scan(sum.Complained)})
	for _, q := range queries {
		if err := db.reportQuery(ctx, q.q, q.args, q.scan); err != nil {
			return nil, fmt.Errorf("sqlite: report overview %s: %w", q.name, err)
		}
	}
	sum.Done()
	from, to := args[0], args[1]
	week := (7 * 24 * time.Hour).Microseconds()
	err := db.reportQuery(ctx, `SELECT n, count(*) FROM (
			SELECT count(*) AS n FROM messages
			WHERE created_at >= ? AND created_at < ? AND status <> 'cancelled'
			GROUP BY contact_id, created_at / ?)
		GROUP BY 1 ORDER BY 1`, []any{from, to, week},
		func(rows *sql.Rows) error {
			var b nudge.ReportWeekBucket
			err := rows.Scan(&b.Messages, &b.Contacts)
			o.PerWeek = append(o.PerWeek, b)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: report overview: %w", err)
	}
	return o, nil
}
