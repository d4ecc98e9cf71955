package postgres

import (
	"context"
	"errors"
	"fmt"
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
