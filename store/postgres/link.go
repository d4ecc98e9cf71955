package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.LinkStore = (*DB)(nil)

// LinkCreate stores links in one statement; see nudge.LinkStore.
func (db *DB) LinkCreate(ctx context.Context, links []*nudge.Link) error {
	if len(links) == 0 {
		return nil
	}
	var secret []byte
	n := len(links)
	codes, urls, msgs, contacts := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	journeys, steps, channels, hashes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	created := make([]time.Time, n)
	for i, l := range links {
		if err := nudge.ValidateLink(l); err != nil {
			return fmt.Errorf("link create: %w", err)
		}
		if l.Channel == nudge.LinkUnsubscribe {
			if secret == nil {
				s, err := db.workspaceSecret(ctx)
				if err != nil {
					return fmt.Errorf("link create: %w", err)
				}
				secret = s
			}
			hashes[i] = nudge.AddressHash(secret, nudge.ChannelEmail, l.Address)
		}
		codes[i], urls[i], msgs[i], contacts[i] = l.Code, l.URL, l.MessageID, l.ContactID
		journeys[i], steps[i], channels[i], created[i] = l.JourneyID, l.StepID, l.Channel, utc(l.CreatedAt)
	}
	// A taken code fails the whole statement (23505): all or none.
	_, err := db.pool.Exec(ctx, `INSERT INTO links (code, url, message_id, contact_id, journey_id, step_id, channel, address_hash, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])`,
		codes, urls, msgs, contacts, journeys, steps, channels, hashes, created)
	if sqlState(err) == "23505" {
		return fmt.Errorf("link create: %w", nudge.Errorf(nudge.ECONFLICT, "a link code is taken"))
	}
	return wrap("link create", err)
}

// LinkGet returns the link or token of a code, or ENOTFOUND.
func (db *DB) LinkGet(ctx context.Context, code string) (*nudge.Link, error) {
	var (
		l     nudge.Link
		hash  string
		email *string
	)
	err := db.pool.QueryRow(ctx, `SELECT l.code, l.url, l.message_id, l.contact_id, l.journey_id, l.step_id, l.channel,
			l.address_hash, l.created_at, c.email
		FROM links l LEFT JOIN contacts c ON c.id = l.contact_id AND l.address_hash <> ''
		WHERE l.code = $1`, code).
		Scan(&l.Code, &l.URL, &l.MessageID, &l.ContactID, &l.JourneyID, &l.StepID, &l.Channel, &hash, &l.CreatedAt, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("link get: %w", nudge.Errorf(nudge.ENOTFOUND, "link not found"))
	}
	if err != nil {
		return nil, wrap("link get", err)
	}
	l.CreatedAt = l.CreatedAt.UTC()
	if l.Channel == nudge.LinkUnsubscribe && hash != "" && email != nil && *email != "" {
		secret, err := db.workspaceSecret(ctx)
		if err != nil {
			return nil, fmt.Errorf("link get: %w", err)
		}
		l.AddressCurrent = nudge.AddressHash(secret, nudge.ChannelEmail, *email) == hash
	}
	return &l, nil
}
