package sqlite

import (
	"context"
	"database/sql"

	"github.com/nudge/nudge"
)

// reportStages reads the CRM movement of a report's cohort (w, args: see
// cohort): the stage changes its contacts made after entry, kept in
// contact_stage_changes by the triggers of migration 0010, and when those
// who became customers did and stopped being customers.
func (db *DB) reportStages(ctx context.Context, w string, args []any, d *nudge.ReportData) error {
	err := db.reportQuery(ctx, `SELECT s.field, s.from_stage, s.to_stage, count(*), count(DISTINCT e.id)
		FROM enrollments e JOIN contact_stage_changes s ON s.contact_id = e.contact_id AND s.at >= e.entered_at
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
			FROM enrollments e JOIN contact_stage_changes s ON s.contact_id = e.contact_id
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
