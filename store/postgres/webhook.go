package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.WebhookStore = (*DB)(nil)

// WebhookCreate stores a subscription; see nudge.WebhookStore.
func (db *DB) WebhookCreate(ctx context.Context, w *nudge.WebhookSubscription) error {
	if err := nudge.ValidateWebhook(w); err != nil {
		return fmt.Errorf("webhook create: %w", err)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO webhooks (id, url, events, secret, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		w.ID, w.URL, w.Events, w.Secret, utc(w.CreatedAt))
	if err != nil {
		return wrap("webhook create", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook create: %w", nudge.Errorf(nudge.ECONFLICT, "a webhook subscription with id %q exists", w.ID))
	}
	return nil
}

const webhookColumns = `id, url, events, secret, created_at`

func scanWebhook(row pgx.Row) (*nudge.WebhookSubscription, error) {
	var w nudge.WebhookSubscription
	if err := row.Scan(&w.ID, &w.URL, &w.Events, &w.Secret, &w.CreatedAt); err != nil {
		return nil, err
	}
	w.CreatedAt = w.CreatedAt.UTC()
	return &w, nil
}

// WebhookGet returns a subscription, or ENOTFOUND.
func (db *DB) WebhookGet(ctx context.Context, id string) (*nudge.WebhookSubscription, error) {
	w, err := scanWebhook(db.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook get: %w", nudge.Errorf(nudge.ENOTFOUND, "webhook subscription not found"))
	}
	if err != nil {
		return nil, wrap("webhook get", err)
	}
	return w, nil
}

// WebhookList returns every subscription, oldest first.
func (db *DB) WebhookList(ctx context.Context) ([]*nudge.WebhookSubscription, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("webhook list", err)
	}
	defer rows.Close()
	var out []*nudge.WebhookSubscription
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, wrap("webhook list", err)
		}
		out = append(out, w)
	}
	return out, wrap("webhook list", rows.Err())
}

// WebhookDelete removes a subscription and (by cascade) its delivery log,
// or returns ENOTFOUND.
func (db *DB) WebhookDelete(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return wrap("webhook delete", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook delete: %w", nudge.Errorf(nudge.ENOTFOUND, "webhook subscription not found"))
	}
	return nil
}

// WebhookDeliveryLog appends delivery attempts. An attempt of a
// subscription deleted meanwhile is dropped (its ID stays 0).
func (db *DB) WebhookDeliveryLog(ctx context.Context, ds []*nudge.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	for _, d := range ds {
		if d == nil || d.SubscriptionID == "" {
			return fmt.Errorf("webhook delivery log: %w", nudge.FieldErrorf("subscription_id", "required"))
		}
	}
	return db.inTx(ctx, "webhook delivery log", func(tx pgx.Tx) error {
		for _, d := range ds {
			var next *time.Time
			if !d.NextAttemptAt.IsZero() {
				n := utc(d.NextAttemptAt)
				next = &n
			}
			err := tx.QueryRow(ctx, `INSERT INTO webhook_deliveries
				(subscription_id, event_id, event, attempt, status_code, ok, error, duration_ms, next_attempt_at, at)
				SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1 FOR KEY SHARE)
				RETURNING id`,
				d.SubscriptionID, d.EventID, d.Event, d.Attempt, d.StatusCode, d.OK, d.Error, d.Duration, next,
				utc(d.At)).Scan(&d.ID)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// WebhookDeliveryList pages a subscription's delivery log, newest first.
func (db *DB) WebhookDeliveryList(ctx context.Context, p *nudge.WebhookDeliveryListParams) ([]*nudge.WebhookDelivery, error) {
	if p == nil {
		p = &nudge.WebhookDeliveryListParams{}
	}
	rows, err := db.pool.Query(ctx, `SELECT id, subscription_id, event_id, event, attempt, status_code, ok, error,
			duration_ms, next_attempt_at, at
		FROM webhook_deliveries
		WHERE subscription_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, p.SubscriptionID, p.BeforeID, limit(p.Limit, 100, 1000))
	if err != nil {
		return nil, wrap("webhook delivery list", err)
	}
	defer rows.Close()
	var out []*nudge.WebhookDelivery
	for rows.Next() {
		var (
			d    nudge.WebhookDelivery
			next *time.Time
		)
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.EventID, &d.Event, &d.Attempt, &d.StatusCode, &d.OK,
			&d.Error, &d.Duration, &next, &d.At); err != nil {
			return nil, wrap("webhook delivery list", err)
		}
		if next != nil {
			d.NextAttemptAt = next.UTC()
		}
		d.At = d.At.UTC()
		out = append(out, &d)
	}
	return out, wrap("webhook delivery list", rows.Err())
}

// WebhookEnqueue stores pending deliveries; see nudge.WebhookStore.
func (db *DB) WebhookEnqueue(ctx context.Context, ps []*nudge.WebhookPending, now time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	return db.inTx(ctx, "webhook enqueue", func(tx pgx.Tx) error {
		for _, p := range ps {
			avail := p.AvailableAt
			if avail.IsZero() {
				avail = now
			}
			err := tx.QueryRow(ctx, `INSERT INTO webhook_pending
				(subscription_id, event_id, event, body, attempt, available_at, created_at)
				SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1)
				ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id`,
				p.SubscriptionID, p.EventID, p.Event, p.Body, p.Attempt, utc(avail), utc(now)).Scan(&p.ID)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		return nil
	})
}

// WebhookClaim claims due pending deliveries with SKIP LOCKED, so several
// nodes share them; see nudge.WebhookStore.
func (db *DB) WebhookClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.WebhookPending, error) {
	limit, err := claimLimit(limit, lease)
	if err != nil {
		return nil, fmt.Errorf("webhook claim: %w", err)
	}
	now = utc(now)
	rows, err := db.pool.Query(ctx, `
		WITH c AS MATERIALIZED (
			SELECT id FROM webhook_pending
			WHERE available_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
			ORDER BY available_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED
		)
		UPDATE webhook_pending p SET claimed_until = $2 FROM c, webhooks w
		WHERE p.id = c.id AND w.id = p.subscription_id
		RETURNING p.id, p.subscription_id, p.event_id, p.event, p.body, p.attempt, p.available_at, p.created_at, w.url, w.secret`,
		now, now.Add(lease), limit)
	if err != nil {
		return nil, wrap("webhook claim", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.WebhookPending, error) {
		var p nudge.WebhookPending
		err := r.Scan(&p.ID, &p.SubscriptionID, &p.EventID, &p.Event, &p.Body, &p.Attempt, &p.AvailableAt, &p.CreatedAt, &p.URL, &p.Secret)
		p.AvailableAt, p.CreatedAt = p.AvailableAt.UTC(), p.CreatedAt.UTC()
		return &p, err
	})
	if err != nil {
		return nil, wrap("webhook claim", err)
	}
	// RETURNING has no order.
	slices.SortFunc(out, func(a, b *nudge.WebhookPending) int {
		if c := a.AvailableAt.Compare(b.AvailableAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// WebhookSettle ends claims; see nudge.WebhookStore.
func (db *DB) WebhookSettle(ctx context.Context, ss []*nudge.WebhookSettle, now time.Time) error {
	if len(ss) == 0 {
		return nil
	}
	return db.inTx(ctx, "webhook settle", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, s := range ss {
			if s.Done {
				b.Queue(`DELETE FROM webhook_pending WHERE id = $1`, s.ID)
				continue
			}
			avail := s.AvailableAt
			if avail.IsZero() {
				avail = now
			}
			b.Queue(`UPDATE webhook_pending SET attempt = $1, available_at = $2, claimed_until = NULL WHERE id = $3`,
				s.Attempt, utc(avail), s.ID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}
