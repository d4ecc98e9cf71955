package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

var _ nudge.WebhookStore = (*DB)(nil)

// WebhookCreate stores a subscription; see nudge.WebhookStore.
func (db *DB) WebhookCreate(ctx context.Context, w *nudge.WebhookSubscription) error {
	if err := nudge.ValidateWebhook(w); err != nil {
		return fmt.Errorf("sqlite: webhook create: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, url, events, secret, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			w.ID, w.URL, strings.Join(w.Events, ","), w.Secret, micros(w.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ECONFLICT, "a webhook subscription with id %q exists", w.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: webhook create: %w", err)
	}
	return nil
}

const webhookColumns = `id, url, events, secret, created_at`

func scanWebhook(row interface{ Scan(...any) error }) (*nudge.WebhookSubscription, error) {
	var (
		w       nudge.WebhookSubscription
		events  string
		created int64
	)
	if err := row.Scan(&w.ID, &w.URL, &events, &w.Secret, &created); err != nil {
		return nil, err
	}
	if events != "" {
		w.Events = strings.Split(events, ",")
	}
	w.CreatedAt = fromMicros(created)
	return &w, nil
}

// WebhookGet returns a subscription, or ENOTFOUND.
func (db *DB) WebhookGet(ctx context.Context, id string) (*nudge.WebhookSubscription, error) {
	w, err := scanWebhook(db.read.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: webhook get: %w", nudge.Errorf(nudge.ENOTFOUND, "webhook subscription not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook get: %w", err)
	}
	return w, nil
}

// WebhookList returns every subscription, oldest first.
func (db *DB) WebhookList(ctx context.Context) ([]*nudge.WebhookSubscription, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook list: %w", err)
	}
	defer rows.Close()
	var out []*nudge.WebhookSubscription
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: webhook list: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: webhook list: %w", err)
	}
	return out, nil
}

// WebhookDelete removes a subscription and its delivery log, or returns
// ENOTFOUND.
func (db *DB) WebhookDelete(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE subscription_id = ?`, id); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nudge.Errorf(nudge.ENOTFOUND, "webhook subscription not found")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: webhook delete: %w", err)
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
			return fmt.Errorf("sqlite: webhook delivery log: %w", nudge.FieldErrorf("subscription_id", "required"))
		}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range ds {
			var next int64
			if !d.NextAttemptAt.IsZero() {
				next = micros(d.NextAttemptAt)
			}
			r, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries
				(subscription_id, event_id, event, attempt, status_code, ok, error, duration_ms, next_attempt_at, at)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)`,
				d.SubscriptionID, d.EventID, d.Event, d.Attempt, d.StatusCode, d.OK, d.Error, d.Duration, next,
				micros(d.At), d.SubscriptionID)
			if err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue
			}
			if d.ID, err = r.LastInsertId(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: webhook delivery log: %w", err)
	}
	return nil
}

// WebhookDeliveryList pages a subscription's delivery log, newest first.
func (db *DB) WebhookDeliveryList(ctx context.Context, p *nudge.WebhookDeliveryListParams) ([]*nudge.WebhookDelivery, error) {
	if p == nil {
		p = &nudge.WebhookDeliveryListParams{}
	}
	q := `SELECT id, subscription_id, event_id, event, attempt, status_code, ok, error, duration_ms, next_attempt_at, at
		FROM webhook_deliveries WHERE subscription_id = ?`
	args := []any{p.SubscriptionID}
	if p.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, p.BeforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(p.Limit, 100, 1000))
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook delivery list: %w", err)
	}
	defer rows.Close()
	var out []*nudge.WebhookDelivery
	for rows.Next() {
		var (
			d        nudge.WebhookDelivery
			next, at int64
		)
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.EventID, &d.Event, &d.Attempt, &d.StatusCode, &d.OK,
			&d.Error, &d.Duration, &next, &at); err != nil {
			return nil, fmt.Errorf("sqlite: webhook delivery list: %w", err)
		}
		if next != 0 {
			d.NextAttemptAt = fromMicros(next)
		}
		d.At = fromMicros(at)
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: webhook delivery list: %w", err)
	}
	return out, nil
}

// WebhookEnqueue stores pending deliveries; see nudge.WebhookStore.
func (db *DB) WebhookEnqueue(ctx context.Context, ps []*nudge.WebhookPending, now time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range ps {
			avail := p.AvailableAt
			if avail.IsZero() {
				avail = now
			}
			err := tx.QueryRowContext(ctx, `INSERT INTO webhook_pending
				(subscription_id, event_id, event, body, attempt, available_at, created_at)
				SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)
				ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id`,
				p.SubscriptionID, p.EventID, p.Event, p.Body, p.Attempt, micros(avail), micros(now)).Scan(&p.ID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: webhook enqueue: %w", err)
	}
	return nil
}

// WebhookClaim claims due pending deliveries; see nudge.WebhookStore. The
// writer connection serializes claims.
func (db *DB) WebhookClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.WebhookPending, error) {
	if err := checkLease(lease); err != nil {
		return nil, fmt.Errorf("sqlite: webhook claim: %w", err)
	}
	var out []*nudge.WebhookPending
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_pending SET claimed_until = ?1
			WHERE id IN (SELECT id FROM webhook_pending
				WHERE available_at <= ?2 AND (claimed_until IS NULL OR claimed_until < ?2)
				ORDER BY available_at, id LIMIT ?3)
			RETURNING id, subscription_id, event_id, event, body, attempt, available_at, created_at,
				(SELECT url FROM webhooks w WHERE w.id = subscription_id), (SELECT secret FROM webhooks w WHERE w.id = subscription_id)`,
			micros(now.Add(lease)), micros(now), limitOf(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p nudge.WebhookPending
			var avail, created int64
			if err := rows.Scan(&p.ID, &p.SubscriptionID, &p.EventID, &p.Event, &p.Body, &p.Attempt, &avail, &created, &p.URL, &p.Secret); err != nil {
				return err
			}
			p.AvailableAt, p.CreatedAt = fromMicros(avail), fromMicros(created)
			out = append(out, &p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook claim: %w", err)
	}
	// RETURNING does not keep the order of the subquery.
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, s := range ss {
			var err error
			if s.Done {
				_, err = tx.ExecContext(ctx, `DELETE FROM webhook_pending WHERE id = ?`, s.ID)
			} else {
				avail := s.AvailableAt
				if avail.IsZero() {
					avail = now
				}
				_, err = tx.ExecContext(ctx, `UPDATE webhook_pending SET attempt = ?, available_at = ?, claimed_until = NULL WHERE id = ?`,
					s.Attempt, micros(avail), s.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: webhook settle: %w", err)
	}
	return nil
}
