package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"time"

	"github.com/nudge/nudge"
)

var _ nudge.StepPauseStore = (*DB)(nil)

const pauseColumns = `journey_id, step_id, reason, sent, opted_out, rate, threshold, min_sends, since, paused_at, resumed_at, resumed_by`

func scanPause(row interface{ Scan(...any) error }) (*nudge.StepPause, error) {
	var (
		p             nudge.StepPause
		since, paused int64
		resumed       sql.NullInt64
	)
	if err := row.Scan(&p.JourneyID, &p.StepID, &p.Reason, &p.Sent, &p.OptedOut, &p.Rate, &p.Threshold, &p.MinSends,
		&since, &paused, &resumed, &p.ResumedBy); err != nil {
		return nil, err
	}
	p.Since, p.PausedAt = fromMicros(since), fromMicros(paused)
	if resumed.Valid {
		p.ResumedAt = fromMicros(resumed.Int64)
	}
	return &p, nil
}

// StepPausePut pauses a step unless a pause of it holds; see
// nudge.StepPauseStore.
func (db *DB) StepPausePut(ctx context.Context, p *nudge.StepPause) (bool, error) {
	if err := nudge.CheckStepPause(p); err != nil {
		return false, fmt.Errorf("sqlite: step pause: %w", err)
	}
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO step_pauses (journey_id, step_id, reason, sent, opted_out, rate, threshold, min_sends, since, paused_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.JourneyID, p.StepID, p.Reason, p.Sent, p.OptedOut, p.Rate, p.Threshold, p.MinSends, micros(p.Since), micros(p.PausedAt))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: step pause: %w", err)
	}
	return n == 1, nil
}

// StepPauseList returns pauses, newest first.
func (db *DB) StepPauseList(ctx context.Context, p *nudge.StepPauseListParams) ([]*nudge.StepPause, error) {
	q := `SELECT ` + pauseColumns + ` FROM step_pauses WHERE (? = '' OR journey_id = ?)`
	if p.Active {
		q += ` AND resumed_at IS NULL`
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY id DESC`, p.JourneyID, p.JourneyID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: step pause list: %w", err)
	}
	defer rows.Close()
	out := []*nudge.StepPause{}
	for rows.Next() {
		sp, err := scanPause(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: step pause list: %w", err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: step pause list: %w", err)
	}
	return out, nil
}

// StepPauseActive returns the pause that holds for a step, or ENOTFOUND.
func (db *DB) StepPauseActive(ctx context.Context, journeyID, stepID string) (*nudge.StepPause, error) {
	sp, err := scanPause(db.read.QueryRowContext(ctx, `SELECT `+pauseColumns+` FROM step_pauses
		WHERE journey_id = ? AND step_id = ? AND resumed_at IS NULL`, journeyID, stepID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: step pause: %w", nudge.Errorf(nudge.ENOTFOUND, "step %s of journey %s is not paused", stepID, journeyID))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: step pause: %w", err)
	}
	return sp, nil
}

// StepResume ends the pause that holds for a step.
func (db *DB) StepResume(ctx context.Context, journeyID, stepID, by string, now time.Time) (*nudge.StepPause, error) {
	var sp *nudge.StepPause
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		sp, err = scanPause(tx.QueryRowContext(ctx, `UPDATE step_pauses SET resumed_at = ?, resumed_by = ?
			WHERE journey_id = ? AND step_id = ? AND resumed_at IS NULL RETURNING `+pauseColumns,
			micros(now), by, journeyID, stepID))
		if errors.Is(err, sql.ErrNoRows) {
			return nudge.Errorf(nudge.ENOTFOUND, "step %s of journey %s is not paused", stepID, journeyID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: step resume: %w", err)
	}
	return sp, nil
}

// resumesCTE names each step's last resume (r).
const resumesCTE = `WITH r AS (SELECT journey_id, step_id, max(resumed_at) AS resumed FROM step_pauses
	WHERE resumed_at IS NOT NULL GROUP BY 1, 2) `

// StepOptOutCounts counts each SMS step's texts queued in [since, now)
// after its last resume (from the covering index messages_sms_created),
// then those followed by an opt-out within 24 hours, from the opt-outs
// (rare: the partial index consent_ledger_optouts) back to the texts
// of their contact in the 24 hours before.
func (db *DB) StepOptOutCounts(ctx context.Context, since, now time.Time) ([]nudge.StepOptOutCount, error) {
	var out []nudge.StepOptOutCount
	index := map[[2]string]int{}
	err := db.reportQuery(ctx, resumesCTE+`SELECT m.journey_id, m.step_id, coalesce(max(?1, r.resumed), ?1), count(*)
		FROM messages m LEFT JOIN r ON r.journey_id = m.journey_id AND r.step_id = m.step_id
		WHERE m.channel = 'sms' AND m.created_at >= ?1 AND m.created_at < ?2 AND m.status <> 'cancelled'
			AND (r.resumed IS NULL OR m.created_at >= r.resumed)
		GROUP BY 1, 2 ORDER BY 1, 2`, []any{micros(since), micros(now)},
		func(rows *sql.Rows) error {
			var (
				c  nudge.StepOptOutCount
				at int64
			)
			if err := rows.Scan(&c.JourneyID, &c.StepID, &at, &c.Sent); err != nil {
				return err
			}
			c.Since = fromMicros(at)
			index[[2]string{c.JourneyID, c.StepID}] = len(out)
			out = append(out, c)
			return nil
		})
	if err != nil || len(out) == 0 {
		return out, wrapErr("sqlite: step opt-out counts", err)
	}
	err = db.reportQuery(ctx, resumesCTE+`SELECT m.journey_id, m.step_id, count(DISTINCT m.id)
		FROM consent_ledger c JOIN messages m ON m.contact_id = c.contact_id
			AND m.created_at <= c.occurred_at AND m.created_at > c.occurred_at - 86400000000
		LEFT JOIN r ON r.journey_id = m.journey_id AND r.step_id = m.step_id
		WHERE c.channel = 'sms' AND c.status = 'opted_out' AND c.source IN ('keyword', 'provider') AND c.occurred_at >= ?1
			AND m.channel = 'sms' AND m.created_at >= ?1 AND m.created_at < ?2 AND m.status <> 'cancelled'
			AND (r.resumed IS NULL OR m.created_at >= r.resumed)
		GROUP BY 1, 2`, []any{micros(since), micros(now)},
		func(rows *sql.Rows) error {
			var (
				journey, step string
				n             int64
			)
			if err := rows.Scan(&journey, &step, &n); err != nil {
				return err
			}
			if i, ok := index[[2]string{journey, step}]; ok {
				out[i].OptedOut = n
			}
			return nil
		})
	return out, wrapErr("sqlite: step opt-out counts", err)
}

// wrapErr prefixes a non-nil error with op.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
