package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/nudge/nudge"
)

var _ nudge.LinkStore = (*DB)(nil)

// LinkCreate stores links in one transaction; see nudge.LinkStore.
func (db *DB) LinkCreate(ctx context.Context, links []*nudge.Link) error {
	if len(links) == 0 {
		return nil
	}
	var key []byte
	for _, l := range links {
		if err := nudge.ValidateLink(l); err != nil {
			return fmt.Errorf("sqlite: link create: %w", err)
		}
		if l.Channel == nudge.LinkUnsubscribe && key == nil {
			k, err := db.workspaceKey(ctx, db.read)
			if err != nil {
				return fmt.Errorf("sqlite: link create: %w", err)
			}
			key = k
		}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// One statement per 100 links keeps within SQLite's variable limit.
		for start := 0; start < len(links); start += 100 {
			chunk := links[start:min(start+100, len(links))]
			var q strings.Builder
			q.WriteString(`INSERT INTO links (code, url, message_id, contact_id, journey_id, step_id, channel, address_hash, created_at) VALUES `)
			args := make([]any, 0, 9*len(chunk))
			for i, l := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
				var hash string
				if l.Channel == nudge.LinkUnsubscribe {
					hash = nudge.AddressHash(key, nudge.ChannelEmail, l.Address)
				}
				args = append(args, l.Code, l.URL, l.MessageID, l.ContactID, l.JourneyID, l.StepID, l.Channel, hash, micros(l.CreatedAt))
			}
			q.WriteString(" ON CONFLICT (code) DO NOTHING")
			r, err := tx.ExecContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil {
				return err
			} else if n != int64(len(chunk)) {
				return nudge.Errorf(nudge.ECONFLICT, "a link code is taken")
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: link create: %w", err)
	}
	return nil
}

// LinkGet returns the link or token of a code, or ENOTFOUND.
func (db *DB) LinkGet(ctx context.Context, code string) (*nudge.Link, error) {
	var (
		l       nudge.Link
		hash    string
		created int64
	)
	err := db.read.QueryRowContext(ctx, `SELECT code, url, message_id, contact_id, journey_id, step_id, channel, address_hash, created_at
		FROM links WHERE code = ?`, code).
		Scan(&l.Code, &l.URL, &l.MessageID, &l.ContactID, &l.JourneyID, &l.StepID, &l.Channel, &hash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: link get: %w", nudge.Errorf(nudge.ENOTFOUND, "link not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: link get: %w", err)
	}
	l.CreatedAt = fromMicros(created)
	if l.Channel == nudge.LinkUnsubscribe && hash != "" {
		var email string
		err := db.read.QueryRowContext(ctx, `SELECT email FROM contacts WHERE id = ?`, l.ContactID).Scan(&email)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("sqlite: link get: contact: %w", err)
		case email != "":
			key, err := db.workspaceKey(ctx, db.read)
			if err != nil {
				return nil, fmt.Errorf("sqlite: link get: %w", err)
			}
			l.AddressCurrent = nudge.AddressHash(key, nudge.ChannelEmail, email) == hash
		}
	}
	return &l, nil
}
