package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nudge/nudge"
)

// messageListQuery returns the SQL and arguments of MessageList; beforeAt
// is the creation time of p.BeforeID (microseconds), when paging newest
// first. Newest first, each filter on its own reads an index in order:
// messages_created, messages_channel_created, messages_journey_created
// (a step within it), messages_status_created, messages_contact_created.
func messageListQuery(p *nudge.MessageListParams, beforeAt int64) (string, []any) {
	w := where{}
	w.eq("contact_id", p.ContactID)
	w.eq("enrollment_id", p.EnrollmentID)
	w.eq("status", p.Status)
	w.eq("channel", p.Channel)
	w.eq("journey_id", p.JourneyID)
	w.eq("step_id", p.StepID)
	if !p.From.IsZero() {
		w.add("created_at >= ?", micros(p.From))
	}
	// SQLite bounds an index search by one upper bound only: of the time
	// range's end and the cursor, only the tighter is written (the other
	// holds for every row it lets through).
	cursor := p.Newest && p.BeforeID != ""
	to := int64(0)
	if !p.To.IsZero() {
		to = micros(p.To)
	}
	if to != 0 && (!cursor || to <= beforeAt) {
		w.add("created_at < ?", to)
		cursor = false
	}
	order := "id"
	if p.Newest {
		order = "created_at DESC, id DESC"
		if cursor {
			w.add("created_at <= ? AND (created_at < ? OR id < ?)", beforeAt, beforeAt, p.BeforeID)
		}
	} else if p.AfterID != "" {
		w.add("id > ?", p.AfterID)
	}
	return `SELECT ` + messageColumns + ` FROM messages` + w.sql() + ` ORDER BY ` + order + ` LIMIT ?`,
		append(w.args, limitOf(p.Limit))
}

// MessageList pages the outbox: by id after p.AfterID, or newest first
// before p.BeforeID; up to p.Limit (default 100, at most 10000).
func (db *DB) MessageList(ctx context.Context, p *nudge.MessageListParams) ([]*nudge.Message, error) {
	if p == nil {
		p = &nudge.MessageListParams{}
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("sqlite: message list: %w", err)
	}
	var beforeAt int64
	if p.Newest && p.BeforeID != "" {
		err := db.read.QueryRowContext(ctx, `SELECT created_at FROM messages WHERE id = ?`, p.BeforeID).Scan(&beforeAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: message list: %w", nudge.FieldErrorf("before_id", "no message %q to page from", p.BeforeID))
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: message list: %w", err)
		}
	}
	q, args := messageListQuery(p, beforeAt)
	st, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message list: %w", err)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message list: %w", err)
	}
	ms, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message list: %w", err)
	}
	return ms, nil
}
