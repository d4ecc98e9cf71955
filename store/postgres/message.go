package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

// MessageList pages the outbox: by id after p.AfterID, or newest first by
// (created_at, id) before p.BeforeID; up to p.Limit (default 100, at most
// 10000). Newest first, each filter on its own reads an index backwards:
// messages_created_idx, messages_channel_created_idx,
// messages_journey_created_idx (a step within it),
// messages_status_created_idx, messages_contact_created_idx.
func (db *DB) MessageList(ctx context.Context, p *nudge.MessageListParams) ([]*nudge.Message, error) {
	if p == nil {
		p = &nudge.MessageListParams{}
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("message list: %w", err)
	}
	var q listQuery
	q.eq("contact_id", p.ContactID)
	q.eq("enrollment_id", p.EnrollmentID)
	q.eq("status", p.Status)
	q.eq("channel", p.Channel)
	q.eq("journey_id", p.JourneyID)
	q.eq("step_id", p.StepID)
	if !p.From.IsZero() {
		q.where = append(q.where, "created_at >= "+q.arg(utc(p.From)))
	}
	if !p.To.IsZero() {
		q.where = append(q.where, "created_at < "+q.arg(utc(p.To)))
	}
	order := "id"
	if p.Newest {
		order = "created_at DESC, id DESC"
		if p.BeforeID != "" {
			var at time.Time
			err := db.pool.QueryRow(ctx, `SELECT created_at FROM messages WHERE id = $1`, p.BeforeID).Scan(&at)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, fmt.Errorf("message list: %w", nudge.FieldErrorf("before_id", "no message %q to page from", p.BeforeID))
			}
			if err != nil {
				return nil, wrap("message list", err)
			}
			q.where = append(q.where, "(created_at, id) < ("+q.arg(at)+", "+q.arg(p.BeforeID)+")")
		}
	} else if p.AfterID != "" {
		q.where = append(q.where, "id > "+q.arg(p.AfterID))
	}
	rows, err := db.pool.Query(ctx, q.sql(`SELECT `+messageColumns+` FROM messages`, order, engineLimit(p.Limit)), q.args...)
	if err != nil {
		return nil, wrap("message list", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, wrap("message list", err)
	}
	if ms == nil {
		ms = []*nudge.Message{}
	}
	return ms, nil
}
