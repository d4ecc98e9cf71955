package postgres

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/nudge/nudge"
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

// ReportJourney runs one grouped query per kind of count over the cohort's
// enrollments, each on the read pool.
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
	queries := []struct {
		name string
		q    string
		scan func(rows pgx.Rows) error
	}{
		{"cohorts", `SELECT held_out, state, reason, count(*) FROM (
				SELECT e.held_out, e.state, coalesce((SELECT d.reason FROM decisions d
					WHERE d.enrollment_id = e.id AND d.outcome IN ('converted', 'exited', 'completed')
					ORDER BY d.id DESC LIMIT 1), '') AS reason
				FROM enrollments e WHERE ` + w + `) x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			func(rows pgx.Rows) error {
				var c nudge.ReportCohort
				err := rows.Scan(&c.HeldOut, &c.State, &c.Reason, &c.Count)
				d.Cohorts = append(d.Cohorts, c)
				return err
			}},
		{"outcomes", `SELECT d.step_id, d.channel, d.outcome, d.reason, count(*), count(DISTINCT d.enrollment_id)
			FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
			func(rows pgx.Rows) error {
				var o nudge.ReportOutcome
				err := rows.Scan(&o.StepID, &o.Channel, &o.Outcome, &o.Reason, &o.Decisions, &o.Enrollments)
				d.Outcomes = append(d.Outcomes, o)
				return err
			}},
		{"paths", `SELECT step_id, sent, held, jheld, conv, count(*) FROM (
				SELECT d.step_id, bool_or(d.outcome = 'sent') AS sent, bool_or(d.outcome = 'held_out') AS held,
					bool_or(e.held_out) AS jheld, bool_or(e.state = 'converted') AS conv
				FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
				WHERE ` + w + ` AND d.step_id <> '' GROUP BY d.enrollment_id, d.step_id) x
			GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
			func(rows pgx.Rows) error {
				var r nudge.ReportPath
				err := rows.Scan(&r.StepID, &r.Sent, &r.StepHeldOut, &r.JourneyHeldOut, &r.Converted, &r.Count)
				d.Paths = append(d.Paths, r)
				return err
			}},
		{"messages", `SELECT m.step_id, m.channel, m.status, count(*)
			FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
			WHERE ` + w + ` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			func(rows pgx.Rows) error {
				var m nudge.ReportMessages
				err := rows.Scan(&m.StepID, &m.Channel, &m.Status, &m.Count)
				d.Messages = append(d.Messages, m)
				return err
			}},
		{"actions", `SELECT m.step_id, m.channel, ev.name, count(DISTINCT m.id)
			FROM events ev JOIN messages m ON m.id = ev.properties->>'message_id'
				AND m.contact_id = ev.contact_id
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE ev.name IN ('email.clicked', 'sms.clicked', 'sms.replied', 'email.complained') AND ` + w + `
			GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
			func(rows pgx.Rows) error {
				var a nudge.ReportAction
				err := rows.Scan(&a.StepID, &a.Channel, &a.Name, &a.Messages)
				d.Actions = append(d.Actions, a)
				return err
			}},
		{"opt-outs", `SELECT m.step_id, m.channel, count(DISTINCT m.id)
			FROM consent_ledger c JOIN messages m ON m.contact_id = c.contact_id AND m.channel = c.channel
				AND m.created_at <= c.occurred_at AND m.created_at > c.occurred_at - CASE c.channel WHEN 'sms' THEN interval '24 hours' ELSE interval '72 hours' END
			JOIN enrollments e ON e.id = m.enrollment_id
			WHERE c.status = 'opted_out' AND c.channel IN ('sms', 'email')
				AND (c.source IN ('keyword', 'provider') OR c.channel = 'email' AND c.source = 'form')
				AND m.status <> 'cancelled' AND ` + w + `
			GROUP BY 1, 2`,
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
			GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
			func(rows pgx.Rows) error {
				var a nudge.ReportActionDelay
				err := rows.Scan(&a.StepID, &a.Channel, &a.Action, &a.Minutes, &a.Count)
				d.ActionDelays = append(d.ActionDelays, a)
				return err
			}},
	}
	for _, q := range queries {
		if err := db.reportQuery(ctx, q.q, args, q.scan); err != nil {
			return nil, fmt.Errorf("postgres: report %s: %w", q.name, err)
		}
	}
	if err := db.reportConversions(ctx, w, args, d); err != nil {
		return nil, fmt.Errorf("postgres: report conversions: %w", err)
	}
	if err := db.reportStages(ctx, w, args, d); err != nil {
		return nil, fmt.Errorf("postgres: report stages: %w", err)
	}
	d.OptOuts = nudge.ReportOptOutsOf(d.Messages, optedOut)
	return d, nil
}

// reportConversions reads the converted enrollments with the steps they
// reached and the messages they got, in three ordered queries merged here.
func (db *DB) reportConversions(ctx context.Context, w string, args []any, d *nudge.ReportData) error {
	index := map[string]int{}
	err := db.reportQuery(ctx, `SELECT e.id, e.held_out, e.entered_at, coalesce(e.ended_at, e.updated_at)
		FROM enrollments e WHERE `+w+` AND e.state = 'converted' ORDER BY e.entered_at, e.id`, args,
		func(rows pgx.Rows) error {
			var (
				id                 string
				c                  nudge.ReportConversion
				entered, converted time.Time
			)
			if err := rows.Scan(&id, &c.HeldOut, &entered, &converted); err != nil {
				return err
			}
			c.EnteredAt, c.ConvertedAt = entered.UTC(), converted.UTC()
			index[id] = len(d.Conversions)
			d.Conversions = append(d.Conversions, c)
			return nil
		})
	if err != nil || len(index) == 0 {
		return err
	}
	err = db.reportQuery(ctx, `SELECT DISTINCT d.enrollment_id, d.step_id
		FROM enrollments e JOIN decisions d ON d.enrollment_id = e.id
		WHERE `+w+` AND e.state = 'converted' AND d.step_id <> '' ORDER BY 1, 2`, args,
		func(rows pgx.Rows) error {
			var id, step string
			if err := rows.Scan(&id, &step); err != nil {
				return err
			}
			if i, ok := index[id]; ok {
				d.Conversions[i].Steps = append(d.Conversions[i].Steps, step)
			}
			return nil
		})
	if err != nil {
		return err
	}
	return db.reportQuery(ctx, `SELECT m.enrollment_id, m.step_id, m.channel, m.created_at
		FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
		WHERE `+w+` AND e.state = 'converted' AND m.status <> 'cancelled' ORDER BY 1, 4, m.id`, args,
		func(rows pgx.Rows) error {
			var (
				id string
				t  nudge.ReportTouch
				at time.Time
			)
			if err := rows.Scan(&id, &t.StepID, &t.Channel, &at); err != nil {
				return err
			}
			t.At = at.UTC()
			if i, ok := index[id]; ok {
				d.Conversions[i].Touches = append(d.Conversions[i].Touches, t)
			}
			return nil
		})
}

// ReportOverview counts every journey's cohort, and messages per contact
// per week over the messages queued in the range.
func (db *DB) ReportOverview(ctx context.Context, p *nudge.ReportParams) (*nudge.ReportOverviewData, error) {
	if err := nudge.CheckReportParams(p, false); err != nil {
		return nil, err
	}
	w, args := cohort(p, false)
	o := &nudge.ReportOverviewData{Journeys: []nudge.ReportJourneyCounts{}, PerWeek: []nudge.ReportWeekBucket{}}
	index := map[string]int{}
	err := db.reportQuery(ctx, `SELECT j.id, count(e.id), count(*) FILTER (WHERE e.state = 'converted'),
			count(*) FILTER (WHERE e.held_out), count(*) FILTER (WHERE e.held_out AND e.state = 'converted')
		FROM journeys j LEFT JOIN enrollments e ON e.journey_id = j.id AND `+w+`
		GROUP BY j.id ORDER BY j.id`, args,
		func(rows pgx.Rows) error {
			var c nudge.ReportJourneyCounts
			if err := rows.Scan(&c.JourneyID, &c.Entered, &c.Converted, &c.HeldOut, &c.HeldOutConverted); err != nil {
				return err
			}
			index[c.JourneyID] = len(o.Journeys)
			o.Journeys = append(o.Journeys, c)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: report overview: %w", err)
	}
	err = db.reportQuery(ctx, `SELECT e.journey_id, m.channel, count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM consent_ledger c
				WHERE c.contact_id = m.contact_id AND c.channel = m.channel AND c.status = 'opted_out'
					AND (c.source IN ('keyword', 'provider') OR m.channel = 'email' AND c.source = 'form')
					AND c.occurred_at >= m.created_at
					AND c.occurred_at < m.created_at + CASE m.channel WHEN 'sms' THEN interval '24 hours' ELSE interval '72 hours' END)),
				0::bigint
		FROM enrollments e JOIN messages m ON m.enrollment_id = e.id
		WHERE `+w+` AND m.channel IN ('sms', 'email') AND m.status <> 'cancelled' GROUP BY 1, 2
		UNION ALL
		SELECT e.journey_id, 'complaint', 0, 0, count(DISTINCT m.id)
		FROM events ev JOIN messages m ON m.id = ev.properties->>'message_id' AND m.contact_id = ev.contact_id
		JOIN enrollments e ON e.id = m.enrollment_id
		WHERE ev.name = 'email.complained' AND `+w+` GROUP BY 1`, args,
		func(rows pgx.Rows) error {
			var (
				id, ch                  string
				sent, opted, complained int64
			)
			if err := rows.Scan(&id, &ch, &sent, &opted, &complained); err != nil {
				return err
			}
			if i, ok := index[id]; ok {
				o.Journeys[i].AddHealth(ch, sent, opted, complained)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: report overview: %w", err)
	}
	from, to := args[0], args[1]
	week := int64(7 * 24 * 3600)
	err = db.reportQuery(ctx, `SELECT n, count(*) FROM (
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
