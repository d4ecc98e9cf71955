package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

type consentKey struct{ hash, channel, purpose string }

// lockID maps a consent key to an advisory lock id. Collisions only make two
// unrelated addresses wait for each other.
func (k consentKey) lockID() int64 {
	s := sha256.Sum256([]byte("nudge.consent\x00" + k.hash + "\x00" + k.channel + "\x00" + k.purpose))
	return int64(binary.BigEndian.Uint64(s[:8]))
}

// ConsentRecord appends entries to the ledger and updates the current state,
// in order, in one transaction. Writers of one address are serialized by an
// advisory lock per (address, channel, purpose), taken in a fixed order
// before the current state is read, so CheckConsentChange always sees the
// latest state.
func (db *DB) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("consent record: %w", err)
	}
	now = utc(now)
	var results []nudge.ConsentRecordResult
	err = db.inTx(ctx, "consent record", func(tx pgx.Tx) error {
		results = make([]nudge.ConsentRecordResult, len(ps))
		keys := make([]consentKey, len(ps))
		var ids []string
		for i, p := range ps {
			if p == nil {
				results[i].Err = nudge.Errorf(nudge.EINVALID, "consent change required")
				continue
			}
			if err := nudge.ValidateConsentParams(p); err != nil {
				results[i].Err = err
				continue
			}
			if p.ContactID != "" {
				ids = append(ids, p.ContactID)
			}
		}
		// KEY SHARE keeps the contacts from being erased under us.
		rows, err := tx.Query(ctx, `SELECT id, email, phone FROM contacts WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`, sortedUnique(ids))
		if err != nil {
			return err
		}
		contacts := map[string]*nudge.Contact{}
		for rows.Next() {
			var c nudge.Contact
			if err := rows.Scan(&c.ID, &c.Email, &c.Phone); err != nil {
				rows.Close()
				return err
			}
			contacts[c.ID] = &c
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var locks []int64
		for i, p := range ps {
			if results[i].Err != nil {
				continue
			}
			addr := nudge.NormalizeAddress(p.Channel, p.Address) // a change for an address no contact has
			if p.ContactID != "" {
				c := contacts[p.ContactID]
				if c == nil {
					results[i].Err = contactNotFound(p.ContactID)
					continue
				}
				addr = nudge.ContactAddress(c, p.Channel)
			}
			if addr == "" {
				what := "an email address"
				if p.Channel == nudge.ChannelSMS {
					what = "a phone number"
				}
				results[i].Err = nudge.FieldErrorf("channel", "contact %q has no %s: consent for %s needs one", p.ContactID, what, p.Channel)
				continue
			}
			keys[i] = consentKey{nudge.AddressHash(secret, p.Channel, addr), p.Channel, p.Purpose}
			locks = append(locks, keys[i].lockID())
		}
		if len(locks) == 0 {
			return nil
		}
		slices.Sort(locks)
		locks = slices.Compact(locks)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(l) FROM unnest($1::bigint[]) AS l`, locks); err != nil {
			return err
		}
		for i, p := range ps {
			if results[i].Err != nil {
				continue
			}
			k := keys[i]
			if p.IdempotencyKey != "" {
				// Under the address's lock, a retry of the same change
				// waits for the first and then finds it.
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM consent_ledger WHERE idempotency_key = $1`,
					p.IdempotencyKey).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					results[i].Duplicate = true
					continue
				}
			}
			cur, err := consentState(ctx, tx, k)
			if err != nil {
				return err
			}
			if err := nudge.CheckConsentChange(cur, p); err != nil {
				results[i].Err = err
				continue
			}
			e := &nudge.ConsentEntry{
				ContactID: p.ContactID, AddressHash: k.hash, Channel: p.Channel, Purpose: p.Purpose,
				Status: p.Status, Source: p.Source, Evidence: p.Evidence,
				OccurredAt: utc(p.OccurredAt), RecordedAt: now,
			}
			if p.OccurredAt.IsZero() {
				e.OccurredAt = now
			}
			ev, err := json.Marshal(e.Evidence)
			if err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `
				WITH e AS (
					INSERT INTO consent_ledger (contact_id, address_hash, channel, purpose, status, source, evidence, occurred_at, recorded_at, idempotency_key)
					VALUES (NULLIF($1, ''), $2, $3, $4, $5, $6, $7, $8, $9, NULLIF($10, ''))
					RETURNING id
				)
				INSERT INTO consent_state (address_hash, channel, purpose, status, source, updated_at, entry_id)
				SELECT $2, $3, $4, $5, $6, $8, id FROM e
				ON CONFLICT (address_hash, channel, purpose) DO UPDATE SET
					status = excluded.status, source = excluded.source,
					updated_at = excluded.updated_at, entry_id = excluded.entry_id
				RETURNING entry_id`,
				e.ContactID, e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source, ev, e.OccurredAt, e.RecordedAt, p.IdempotencyKey,
			).Scan(&e.ID); err != nil {
				return err
			}
			results[i].Entry = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func consentState(ctx context.Context, q querier, k consentKey) (*nudge.ConsentState, error) {
	var s nudge.ConsentState
	err := q.QueryRow(ctx, `SELECT channel, purpose, status, source, updated_at, entry_id FROM consent_state
		WHERE address_hash = $1 AND channel = $2 AND purpose = $3`, k.hash, k.channel, k.purpose).
		Scan(&s.Channel, &s.Purpose, &s.Status, &s.Source, &s.UpdatedAt, &s.EntryID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.UpdatedAt = s.UpdatedAt.UTC()
	return &s, nil
}

// contactHashes returns the address hashes of a contact's current
// addresses, or ENOTFOUND.
func (db *DB) contactHashes(ctx context.Context, id string) (email, sms string, err error) {
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return "", "", err
	}
	var c nudge.Contact
	err = db.pool.QueryRow(ctx, `SELECT email, phone FROM contacts WHERE id = $1`, id).Scan(&c.Email, &c.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", contactNotFound(id)
	}
	if err != nil {
		return "", "", err
	}
	if c.Email != "" {
		email = nudge.AddressHash(secret, nudge.ChannelEmail, c.Email)
	}
	if c.Phone != "" {
		sms = nudge.AddressHash(secret, nudge.ChannelSMS, c.Phone)
	}
	return email, sms, nil
}

// ConsentList returns the current consent of the contact's addresses, one
// state per channel and purpose ever recorded, by channel then purpose.
func (db *DB) ConsentList(ctx context.Context, contactID string) ([]*nudge.ConsentState, error) {
	email, sms, err := db.contactHashes(ctx, contactID)
	if err != nil {
		return nil, wrap("consent list", err)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT channel, purpose, status, source, updated_at, entry_id FROM consent_state
		WHERE (address_hash = $1 AND channel = 'email') OR (address_hash = $2 AND channel = 'sms')
		ORDER BY channel, purpose`, email, sms)
	if err != nil {
		return nil, wrap("consent list", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.ConsentState, error) {
		var s nudge.ConsentState
		err := r.Scan(&s.Channel, &s.Purpose, &s.Status, &s.Source, &s.UpdatedAt, &s.EntryID)
		s.UpdatedAt = s.UpdatedAt.UTC()
		return &s, err
	})
	if err != nil {
		return nil, wrap("consent list", err)
	}
	if out == nil {
		out = []*nudge.ConsentState{}
	}
	return out, nil
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
	const cols = `SELECT id, coalesce(contact_id, ''), address_hash, channel, purpose, status, source, evidence, occurred_at, recorded_at FROM consent_ledger`
	var (
		rows pgx.Rows
		err  error
	)
	if p.ContactID == "" {
		rows, err = db.pool.Query(ctx, cols+` WHERE id > $1 ORDER BY id LIMIT $2`, p.AfterID, n)
	} else {
		email, sms, herr := db.contactHashes(ctx, p.ContactID)
		if herr != nil {
			return nil, wrap("consent ledger", herr)
		}
		// Each branch can use its own index; the union is merged in id order.
		rows, err = db.pool.Query(ctx, `SELECT * FROM (
			`+cols+` WHERE contact_id = $1 AND id > $4
			UNION
			`+cols+` WHERE address_hash IN ($2, $3) AND id > $4
		) l ORDER BY id LIMIT $5`, p.ContactID, email, sms, p.AfterID, n)
	}
	if err != nil {
		return nil, wrap("consent ledger", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.ConsentEntry, error) {
		var e nudge.ConsentEntry
		err := r.Scan(&e.ID, &e.ContactID, &e.AddressHash, &e.Channel, &e.Purpose, &e.Status, &e.Source,
			&e.Evidence, &e.OccurredAt, &e.RecordedAt)
		e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
		return &e, err
	})
	if err != nil {
		return nil, wrap("consent ledger", err)
	}
	if out == nil {
		out = []*nudge.ConsentEntry{}
	}
	return out, nil
}
