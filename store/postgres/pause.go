package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.StepPauseStore = (*DB)(nil)

const pauseColumns = `journey_id, step_id, reason, sent, opted_out, rate, threshold, min_sends, since, paused_at, resumed_at, resumed_by`

func scanPause(row pgx.Row) (*nudge.StepPause, error) {
	var (
		p       nudge.StepPause
		resumed *time.Time
	)
	if err := row.Scan(&p.JourneyID, &p.StepID, &p.Reason, &p.Sent, &p.OptedOut, &p.Rate, &p.Threshold, &p.MinSends,
		&p.Since, &p.PausedAt, &resumed, &p.ResumedBy); err != nil {
		return nil, err
	}
	p.Since, p.PausedAt = p.Since.UTC(), p.PausedAt.UTC()
	if resumed != nil {
		p.ResumedAt = resumed.UTC()
	}
	return &p, nil
}

// StepPausePut pauses a step unless a pause of it holds; see
// nudge.StepPauseStore.
func (db *DB) StepPausePut(ctx context.Context, p *nudge.StepPause) (bool, error) {
	if err := nudge.CheckStepPause(p); err != nil {
		return false, fmt.Errorf("step pause: %w", err)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO step_pauses (journey_id, step_id, reason, sent, opted_out, rate, threshold, min_sends, since, paused_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		p.JourneyID, p.StepID, p.Reason, p.Sent, p.OptedOut, p.Rate, p.Threshold, p.MinSends, utc(p.Since), utc(p.PausedAt))
	if err != nil {
		return false, wrap("step pause", err)
	}
	return tag.RowsAffected() == 1, nil
}

// StepPauseList returns pauses, newest first.
func (db *DB) StepPauseList(ctx context.Context, p *nudge.StepPauseListParams) ([]*nudge.StepPause, error) {
	q := `SELECT ` + pauseColumns + ` FROM step_pauses WHERE ($1 = '' OR journey_id = $1)`
	if p.Active {
		q += ` AND resumed_at IS NULL`
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY id DESC`, p.JourneyID)
	if err != nil {
		return nil, wrap("step pause list", err)
	}
	defer rows.Close()
	out := []*nudge.StepPause{}
	for rows.Next() {
		sp, err := scanPause(rows)
		if err != nil {
			return nil, wrap("step pause list", err)
		}
		out = append(out, sp)
	}
	return out, wrap("step pause list", rows.Err())
}

// StepPauseActive returns the pause that holds for a step, or ENOTFOUND.
func (db *DB) StepPauseActive(ctx context.Context, journeyID, stepID string) (*nudge.StepPause, error) {
	sp, err := scanPause(db.pool.QueryRow(ctx, `SELECT `+pauseColumns+` FROM step_pauses
		WHERE journey_id = $1 AND step_id = $2 AND resumed_at IS NULL`, journeyID, stepID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("step pause: %w", nudge.Errorf(nudge.ENOTFOUND, "step %s of journey %s is not paused", stepID, journeyID))
	}
	if err != nil {
		return nil, wrap("step pause", err)
	}
	return sp, nil
}

// StepResume ends the pause that holds for a step.
func (db *DB) StepResume(ctx context.Context, journeyID, stepID, by string, now time.Time) (*nudge.StepPause, error) {
	sp, err := scanPause(db.pool.QueryRow(ctx, `UPDATE step_pauses SET resumed_at = $1, resumed_by = $2
		WHERE journey_id = $3 AND step_id = $4 AND resumed_at IS NULL RETURNING `+pauseColumns,
		utc(now), by, journeyID, stepID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("step resume: %w", nudge.Errorf(nudge.ENOTFOUND, "step %s of journey %s is not paused", stepID, journeyID))
	}
	if err != nil {
		return nil, wrap("step resume", err)
	}
	return sp, nil
}

// resumesCTE names each step's last resume (r).
const resumesCTE = `WITH r AS (SELECT journey_id, step_id, max(resumed_at) AS resumed FROM step_pauses
	WHERE resumed_at IS NOT NULL GROUP BY 1, 2) `

// StepOptOutCounts counts each SMS step's texts queued in [since, now)
// after its last resume (from the covering index messages_sms_created_idx),
// then those followed by an opt-out within 24 hours, from the opt-outs
// (rare: the partial index consent_ledger_optouts_idx) back to the
// texts of their contact in the 24 hours before.
func (db *DB) StepOptOutCounts(ctx context.Context, since, now time.Time) ([]nudge.StepOptOutCount, error) {
	var out []nudge.StepOptOutCount
	index := map[[2]string]int{}
	err := db.reportQuery(ctx, resumesCTE+`SELECT m.journey_id, m.step_id, greatest($1, r.resumed), count(*)
		FROM messages m LEFT JOIN r ON r.journey_id = m.journey_id AND r.step_id = m.step_id
		WHERE m.channel = 'sms' AND m.created_at >= $1 AND m.created_at < $2 AND m.status <> 'cancelled'
			AND (r.resumed IS NULL OR m.created_at >= r.resumed)
		GROUP BY 1, 2, 3 ORDER BY 1, 2`, []any{utc(since), utc(now)},
		func(rows pgx.Rows) error {
			var c nudge.StepOptOutCount
			if err := rows.Scan(&c.JourneyID, &c.StepID, &c.Since, &c.Sent); err != nil {
				return err
			}
			c.Since = c.Since.UTC()
			index[[2]string{c.JourneyID, c.StepID}] = len(out)
			out = append(out, c)
			return nil
		})
	if err != nil || len(out) == 0 {
		return out, wrap("step opt-out counts", err)
	}
	err = db.reportQuery(ctx, resumesCTE+`SELECT m.journey_id, m.step_id, count(DISTINCT m.id)
		FROM consent_ledger c JOIN messages m ON m.contact_id = c.contact_id
			AND m.created_at <= c.occurred_at AND m.created_at > c.occurred_at - interval '24 hours'
		LEFT JOIN r ON r.journey_id = m.journey_id AND r.step_id = m.step_id
		WHERE c.channel = 'sms' AND c.status = 'opted_out' AND c.source IN ('keyword', 'provider') AND c.occurred_at >= $1
			AND m.channel = 'sms' AND m.created_at >= $1 AND m.created_at < $2 AND m.status <> 'cancelled'
			AND (r.resumed IS NULL OR m.created_at >= r.resumed)
		GROUP BY 1, 2`, []any{utc(since), utc(now)},
		func(rows pgx.Rows) error {
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
	return out, wrap("step opt-out counts", err)
}
