package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nudge/nudge"
)

// providerUpsert folds one report into its provider's row: a later success
// or error replaces an earlier one (reports of several nodes arrive in any
// order), and the hour counts add up within an hour and restart in a new
// one. Times are microseconds, 0 for none.
const providerUpsert = `INSERT INTO provider_status (channel, provider, last_success_at, last_error_at, last_error,
		hour_start, hour_successes, hour_errors, updated_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
	ON CONFLICT (channel, provider) DO UPDATE SET
		last_success_at = max(last_success_at, excluded.last_success_at),
		last_error = CASE WHEN excluded.last_error_at > last_error_at THEN excluded.last_error ELSE last_error END,
		last_error_at = max(last_error_at, excluded.last_error_at),
		hour_successes = CASE WHEN excluded.hour_start > hour_start THEN excluded.hour_successes
			WHEN excluded.hour_start = hour_start THEN hour_successes + excluded.hour_successes
			ELSE hour_successes END,
		hour_errors = CASE WHEN excluded.hour_start > hour_start THEN excluded.hour_errors
			WHEN excluded.hour_start = hour_start THEN hour_errors + excluded.hour_errors
			ELSE hour_errors END,
		hour_start = max(hour_start, excluded.hour_start),
		updated_at = max(updated_at, excluded.updated_at)`

// optMicros is t in microseconds, or 0 for the zero time.
func optMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// fromOptMicros is the inverse of optMicros.
func fromOptMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMicros(v)
}

// ProviderRecord folds delivery reports into the providers' statuses, one
// upsert per report, in one transaction.
func (db *DB) ProviderRecord(ctx context.Context, rs []*nudge.ProviderReport, now time.Time) error {
	if err := nudge.CheckProviderReports(rs); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	hour := micros(now.UTC().Truncate(time.Hour))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, providerUpsert)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rs {
			if _, err := st.ExecContext(ctx, r.Channel, r.Provider, optMicros(r.LastSuccessAt), optMicros(r.LastErrorAt),
				nudge.MaskAddresses(r.LastError), hour, r.Successes, r.Errors, micros(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: provider record: %w", err)
	}
	return nil
}

// ProviderList returns every provider status, by channel and provider.
func (db *DB) ProviderList(ctx context.Context) ([]*nudge.ProviderStatus, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT channel, provider, last_success_at, last_error_at, last_error,
		hour_start, hour_successes, hour_errors, updated_at FROM provider_status ORDER BY channel, provider`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: provider list: %w", err)
	}
	defer rows.Close()
	ps := []*nudge.ProviderStatus{}
	for rows.Next() {
		var (
			p                              nudge.ProviderStatus
			success, failed, hour, updated int64
		)
		if err := rows.Scan(&p.Channel, &p.Provider, &success, &failed, &p.LastError,
			&hour, &p.HourSuccesses, &p.HourErrors, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: provider list: %w", err)
		}
		p.LastSuccessAt, p.LastErrorAt = fromOptMicros(success), fromOptMicros(failed)
		p.HourStart, p.UpdatedAt = fromMicros(hour), fromMicros(updated)
		ps = append(ps, &p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: provider list: %w", err)
	}
	return ps, nil
}
