package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nudge/nudge"
)

// ConsentRecord appends entries to the consent ledger and updates the
// current state, in order, in one transaction. A change that cannot be
// recorded is reported in its result; the others are recorded.
func (db *DB) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	results := make([]nudge.ConsentRecordResult, len(ps))
	if len(ps) == 0 {
		return results, nil
	}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent record: %w", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		for i, p := range ps {
			e, err := recordConsent(ctx, tx, key, p, now)
			if code := nudge.ErrorCode(err); code != "" && code != nudge.EINTERNAL {
				results[i] = nudge.ConsentRecordResult{Err: err}
				continue
			}
			if err != nil {
				return err
			}
			results[i] = nudge.ConsentRecordResult{Entry: e}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent record: %w", err)
	}
	return results, nil
}

func recordConsent(ctx context.Context, tx *sql.Tx, key []byte, p *nudge.ConsentRecordParams, now time.Time) (*nudge.ConsentEntry, error) {
	if p == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "consent change required")
	}
	if err := nudge.ValidateConsentParams(p); err != nil {
		return nil, err
	}
	c, err := getContact(ctx, tx, p.ContactID)
	if err != nil {
		return nil, err
	}
	addr := nudge.ContactAddress(c, p.Channel)
	if addr == "" {
		what := "an email address"
		if p.Channel == nudge.ChannelSMS {
			what = "a phone number"
		}
		return nil, nudge.FieldErrorf("channel", "contact %q has no %s: consent for %s needs one", c.ID, what, p.Channel)
	}
	hash := nudge.AddressHash(key, p.Channel, addr)
	cur, err := consentState(ctx, tx, hash, p.Channel, p.Purpose)
	if err != nil {
		return nil, err
	}
	if err := nudge.CheckConsentChange(cur, p); err != nil {
		return nil, err
	}
	occurred := p.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	evidence, err := json.Marshal(p.Evidence)
	if err != nil {
		return nil, err
	}
	e := &nudge.ConsentEntry{
		ContactID:   c.ID,
		AddressHash: hash,
		Channel:     p.Channel,
		Purpose:     p.Purpose,
		Status:      p.Status,
		Source:      p.Source,
		Evidence:    p.Evidence,
		OccurredAt:  fromMicros(micros(occurred)),
		RecordedAt:  fromMicros(micros(now)),
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO consent_ledger
		(contact_id, address_hash, channel, purpose, status, source, evidence, occurred_at, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.ContactID, e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source, string(evidence),
		micros(e.OccurredAt), micros(e.RecordedAt)).Scan(&e.ID)
	if err != nil {
		return nil, err
	}
	// The state is the latest recorded entry; its time is when the change
	// happened, which is what a person reading "opted out on ..." means.
	_, err = tx.ExecContext(ctx, `INSERT INTO consent_state
		(address_hash, channel, purpose, status, source, updated_at, entry_id)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (address_hash, channel, purpose) DO UPDATE SET
			status = excluded.status, source = excluded.source,
			updated_at = excluded.updated_at, entry_id = excluded.entry_id`,
		e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source, micros(e.OccurredAt), e.ID)
	if err != nil {
		return nil, err
	}
	return e, nil
}

const consentStateColumns = `channel, purpose, status, source, updated_at, entry_id`

func scanConsentState(s scanner) (*nudge.ConsentState, error) {
	var (
		st      nudge.ConsentState
		updated int64
	)
	if err := s.Scan(&st.Channel, &st.Purpose, &st.Status, &st.Source, &updated, &st.EntryID); err != nil {
		return nil, err
	}
	st.UpdatedAt = fromMicros(updated)
	return &st, nil
}

// consentState returns the current state of an address, or nil if none was
// ever recorded.
func consentState(ctx context.Context, q querier, hash, channel, purpose string) (*nudge.ConsentState, error) {
	st, err := scanConsentState(q.QueryRowContext(ctx, `SELECT `+consentStateColumns+`
		FROM consent_state WHERE address_hash = ? AND channel = ? AND purpose = ?`, hash, channel, purpose))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return st, err
}

// addressHashes returns the hashes of the contact's current addresses.
func addressHashes(key []byte, c *nudge.Contact) []string {
	var hs []string
	for _, ch := range nudge.Channels {
		if a := nudge.ContactAddress(c, ch); a != "" {
			hs = append(hs, nudge.AddressHash(key, ch, a))
		}
	}
	return hs
}

// ConsentList returns the current consent of the contact's addresses, by
// channel and purpose.
func (db *DB) ConsentList(ctx context.Context, contactID string) ([]*nudge.ConsentState, error) {
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list: %w", err)
	}
	states := []*nudge.ConsentState{}
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		c, err := getContact(ctx, tx, contactID)
		if err != nil {
			return err
		}
		hs := addressHashes(key, c)
		if len(hs) == 0 {
			return nil
		}
		args := make([]any, len(hs))
		for i, h := range hs {
			args[i] = h
		}
		// The hash covers the channel, so matching it alone cannot
		// mix one channel's state into another's.
		rows, err := tx.QueryContext(ctx, `SELECT `+consentStateColumns+` FROM consent_state
			WHERE address_hash IN (`+placeholders(len(hs))+`) ORDER BY channel, purpose`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanConsentState(rows)
			if err != nil {
				return err
			}
			states = append(states, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list: %w", err)
	}
	return states, nil
}

// ConsentLedger returns ledger entries in id order: the contact's (by
// contact id, or by the hash of its current addresses, which finds entries
// recorded for an earlier, erased holder of the address), or all of them.
// ENOTFOUND if the contact does not exist.
func (db *DB) ConsentLedger(ctx context.Context, p *nudge.ConsentLedgerParams) ([]*nudge.ConsentEntry, error) {
	if p == nil {
		p = &nudge.ConsentLedgerParams{}
	}
	n := limit(p.Limit, 100, 10000)
	entries := []*nudge.ConsentEntry{}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		q := `SELECT id, contact_id, address_hash, channel, purpose, status, source, evidence, occurred_at, recorded_at
			FROM consent_ledger WHERE id > ?`
		args := []any{p.AfterID}
		if p.ContactID != "" {
			key, err := db.workspaceKey(ctx, tx)
			if err != nil {
				return err
			}
			c, err := getContact(ctx, tx, p.ContactID)
			if err != nil {
				return err
			}
			q += ` AND (contact_id = ?`
			args = append(args, c.ID)
			for _, h := range addressHashes(key, c) {
				q += ` OR address_hash = ?`
				args = append(args, h)
			}
			q += `)`
		}
		q += ` ORDER BY id LIMIT ?`
		args = append(args, n)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e                  nudge.ConsentEntry
				contactID          sql.NullString
				evidence           string
				occurred, recorded int64
			)
			if err := rows.Scan(&e.ID, &contactID, &e.AddressHash, &e.Channel, &e.Purpose, &e.Status, &e.Source,
				&evidence, &occurred, &recorded); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(evidence), &e.Evidence); err != nil {
				return fmt.Errorf("ledger entry %d: evidence: %w", e.ID, err)
			}
			e.ContactID = contactID.String
			e.OccurredAt = fromMicros(occurred)
			e.RecordedAt = fromMicros(recorded)
			entries = append(entries, &e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent ledger: %w", err)
	}
	return entries, nil
}

// readTx runs fn in a read transaction: one snapshot of the database.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}
