package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

// providerUpsert folds one report into its provider's row: a later success
// or error replaces an earlier one (reports of several nodes arrive in any
// order), and the hour counts add up within an hour and restart in a new
// one. GREATEST ignores NULLs, the "never" of the times.
const providerUpsert = `INSERT INTO provider_status AS p (channel, provider, last_success_at, last_error_at, last_error,
		hour_start, hour_successes, hour_errors, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (channel, provider) DO UPDATE SET
		last_success_at = GREATEST(p.last_success_at, excluded.last_success_at),
		last_error = CASE WHEN excluded.last_error_at > p.last_error_at OR p.last_error_at IS NULL AND excluded.last_error_at IS NOT NULL
			THEN excluded.last_error ELSE p.last_error END,
		last_error_at = GREATEST(p.last_error_at, excluded.last_error_at),
		hour_successes = CASE WHEN excluded.hour_start > p.hour_start THEN excluded.hour_successes
			WHEN excluded.hour_start = p.hour_start THEN p.hour_successes + excluded.hour_successes
			ELSE p.hour_successes END,
		hour_errors = CASE WHEN excluded.hour_start > p.hour_start THEN excluded.hour_errors
			WHEN excluded.hour_start = p.hour_start THEN p.hour_errors + excluded.hour_errors
			ELSE p.hour_errors END,
		hour_start = GREATEST(p.hour_start, excluded.hour_start),
		updated_at = GREATEST(p.updated_at, excluded.updated_at)`

// ProviderRecord folds delivery reports into the providers' statuses, one
// upsert per report, in one transaction. Rows are written in key order, so
// nodes reporting the same providers at once wait for each other instead
// of deadlocking.
func (db *DB) ProviderRecord(ctx context.Context, rs []*nudge.ProviderReport, now time.Time) error {
	if err := nudge.CheckProviderReports(rs); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b *nudge.ProviderReport) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Provider, b.Provider))
	})
	hour := utc(now.Truncate(time.Hour))
	return db.inTx(ctx, "provider record", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range rs {
			b.Queue(providerUpsert, r.Channel, r.Provider, nullTime(r.LastSuccessAt), nullTime(r.LastErrorAt),
				nudge.MaskAddresses(r.LastError), hour, r.Successes, r.Errors, utc(now))
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ProviderList returns every provider status, by channel and provider.
func (db *DB) ProviderList(ctx context.Context) ([]*nudge.ProviderStatus, error) {
	rows, err := db.pool.Query(ctx, `SELECT channel, provider, last_success_at, last_error_at, last_error,
		hour_start, hour_successes, hour_errors, updated_at FROM provider_status ORDER BY channel COLLATE "C", provider COLLATE "C"`)
	if err != nil {
		return nil, wrap("provider list", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.ProviderStatus, error) {
		var (
			p               nudge.ProviderStatus
			success, failed *time.Time
		)
		if err := r.Scan(&p.Channel, &p.Provider, &success, &failed, &p.LastError,
			&p.HourStart, &p.HourSuccesses, &p.HourErrors, &p.UpdatedAt); err != nil {
			return nil, err
		}
		if success != nil {
			p.LastSuccessAt = success.UTC()
		}
		if failed != nil {
			p.LastErrorAt = failed.UTC()
		}
		p.HourStart, p.UpdatedAt = p.HourStart.UTC(), p.UpdatedAt.UTC()
		return &p, nil
	})
	if err != nil {
		return nil, wrap("provider list", err)
	}
	if ps == nil {
		ps = []*nudge.ProviderStatus{}
	}
	return ps, nil
}
