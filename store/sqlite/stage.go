package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nudge/nudge"
)

// reportStages reads the CRM movement of a report's cohort (w, args: see
// cohort): the stage changes its contacts made after entry, kept in
// contact_stage_changes by the triggers of migration 0010, and when those
// who became customers did and stopped being customers. Both go from the
// stage changes to the enrollments of their contacts (CROSS JOIN fixes
// SQLite's join order): a cohort may hold a million enrollments whose
// contacts made no change.
func (db *DB) reportStages(ctx context.Context, w string, args []any, d *nudge.ReportData) error {
	err := db.reportQuery(ctx, `SELECT s.field, s.from_stage, s.to_stage, count(*), count(DISTINCT e.id)
		FROM contact_stage_changes s CROSS JOIN enrollments e ON e.contact_id = s.contact_id AND s.at >= e.entered_at
		WHERE `+w+` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, args,
		func(rows *sql.Rows) error {
			var m nudge.ReportStageMove
			err := rows.Scan(&m.Field, &m.From, &m.To, &m.Changes, &m.Enrollments)
			d.Stages = append(d.Stages, m)
			return err
		})
	if err != nil {
		return err
	}
	return db.reportQuery(ctx, `SELECT b.became, coalesce((SELECT min(s.at) FROM contact_stage_changes s
				WHERE s.contact_id = b.contact_id AND s.field = 'lifecycle_stage' AND s.from_stage = 'customer'
					AND s.at >= b.became), 0)
		FROM (SELECT e.id, e.contact_id, min(s.at) AS became
			FROM contact_stage_changes s CROSS JOIN enrollments e ON e.contact_id = s.contact_id
				AND s.field = 'lifecycle_stage' AND s.to_stage = 'customer' AND s.at >= e.entered_at
			WHERE `+w+` GROUP BY e.id, e.contact_id) b
		ORDER BY 1, 2`, args,
		func(rows *sql.Rows) error {
			var became, left int64
			if err := rows.Scan(&became, &left); err != nil {
				return err
			}
			c := nudge.ReportCustomer{BecameAt: fromMicros(became)}
			if left != 0 {
				c.LeftAt = fromMicros(left)
			}
			d.Customers = append(d.Customers, c)
			return nil
		})
}

// ContactStageList returns a contact's stage changes, oldest first, with
// their source (see nudge.ContactStageChange).
func (db *DB) ContactStageList(ctx context.Context, contactID string) ([]*nudge.ContactStageChange, error) {
	out := []*nudge.ContactStageChange{}
	err := db.reportQuery(ctx, `SELECT s.field, s.from_stage, s.to_stage, s.at,
			coalesce((SELECT 'journey:' || d.journey_id FROM decisions d
					WHERE d.contact_id = s.contact_id AND d.at = s.at AND d.outcome = 'updated' LIMIT 1),
				(SELECT 'identify' FROM events ev
					WHERE ev.contact_id = s.contact_id AND ev.type = 'identify' AND ev.received_at = s.at LIMIT 1),
				'api')
		FROM contact_stage_changes s WHERE s.contact_id = ? ORDER BY s.id`, []any{contactID},
		func(rows *sql.Rows) error {
			var (
				c  nudge.ContactStageChange
				at int64
			)
			if err := rows.Scan(&c.Field, &c.From, &c.To, &at, &c.Source); err != nil {
				return err
			}
			c.At = fromMicros(at)
			out = append(out, &c)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact stages: %w", err)
	}
	return out, nil
}
