package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// ConsentRecord appends entries to the consent ledger and updates the
// current state, in order, in one transaction. A change that cannot be
// recorded is reported in its result; the others are recorded.
//
// The contacts and the current states the changes need are read in one
// statement each; each change is checked against the state the changes
// before it left; the entries are inserted, and the final state of each
// address, channel and purpose written, by multi-row statements.
func (db *DB) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	results := make([]nudge.ConsentRecordResult, len(ps))
	if len(ps) == 0 {
		return results, nil
	}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent record: %w", err)
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent record: %w", err)
	}
	// What can be checked without the database is checked first.
	var ids []string
	seen := map[string]bool{}
	for i, p := range ps {
		if p == nil {
			results[i].Err = nudge.Errorf(nudge.EINVALID, "consent change required")
			continue
		}
		if err := nudge.ValidateConsentParams(p); err != nil {
			results[i].Err = err
			continue
		}
		if p.ContactID != "" && !seen[p.ContactID] {
			seen[p.ContactID] = true
			ids = append(ids, p.ContactID)
		}
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		contacts, err := contactAddresses(ctx, tx.StmtContext(ctx, ws.contactAddresses), ids)
		if err != nil {
			return err
		}
		if err := consentDuplicates(ctx, tx, ps, results); err != nil {
			return err
		}
		hashes := make([]string, len(ps))
		var hs []string
		seen := map[string]bool{}
		for i, p := range ps {
			if results[i].Err != nil || results[i].Duplicate {
				continue
			}
			addr := p.Address
			if p.ContactID != "" {
				c := contacts[p.ContactID]
				if c == nil {
					continue
				}
				addr = nudge.ContactAddress(c, p.Channel)
			}
			if addr != "" {
				hashes[i] = nudge.AddressHash(key, p.Channel, addr)
				if !seen[hashes[i]] {
					seen[hashes[i]] = true
					hs = append(hs, hashes[i])
				}
			}
		}
		states, err := consentStates(ctx, tx.StmtContext(ctx, ws.consentStates), hs)
		if err != nil {
			return err
		}
		var (
			entries []*nudge.ConsentEntry
			args    []any
			last    = map[stateKey]*nudge.ConsentEntry{} // the latest entry of each state
			order   []stateKey                           // the states changed
		)
		for i, p := range ps {
			if results[i].Err != nil || results[i].Duplicate {
				continue
			}
			e, err := consentEntry(contacts[p.ContactID], p, hashes[i], states, now)
			if code := nudge.ErrorCode(err); code != "" && code != nudge.EINTERNAL {
				results[i].Err = err
				continue
			}
			if err != nil {
				return err
			}
			evidence, err := json.Marshal(p.Evidence)
			if err != nil {
				return err
			}
			k := stateKey{e.AddressHash, e.Channel, e.Purpose}
			states[k] = &nudge.ConsentState{Channel: e.Channel, Purpose: e.Purpose, Status: e.Status, Source: e.Source,
				UpdatedAt: e.OccurredAt}
			if last[k] == nil {
				order = append(order, k)
			}
			last[k] = e
			results[i].Entry = e
			entries = append(entries, e)
			args = append(args, nullString(e.ContactID), e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source, string(evidence),
				micros(e.OccurredAt), micros(e.RecordedAt), nullString(p.IdempotencyKey))
		}
		if len(entries) == 0 {
			return nil
		}
		// AUTOINCREMENT ids grow in the order a statement inserts its
		// rows, which RETURNING need not keep: sorted, they are in
		// the order of the entries.
		ledgerIDs := make([]int64, 0, len(entries))
		if err := execRows(ctx, tx, ws.ledgerInsert, ledgerInsertColumns, args, func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ledgerIDs = append(ledgerIDs, id)
			return nil
		}); err != nil {
			return err
		}
		if len(ledgerIDs) != len(entries) {
			return fmt.Errorf("%d ledger entries inserted, %d returned", len(entries), len(ledgerIDs))
		}
		slices.Sort(ledgerIDs)
		for i, e := range entries {
			e.ID = ledgerIDs[i]
		}
		// The state is the latest recorded entry; its time is when the
		// change happened, which is what a person reading "opted out
		// on ..." means.
		// In key order, each row lands next to the one before it in
		// the table's B-tree.
		slices.SortFunc(order, func(a, b stateKey) int {
			return cmp.Or(strings.Compare(a.hash, b.hash), strings.Compare(a.channel, b.channel), strings.Compare(a.purpose, b.purpose))
		})
		args = args[:0]
		for _, k := range order {
			e := last[k]
			args = append(args, e.AddressHash, e.Channel, e.Purpose, e.Status, e.Source, micros(e.OccurredAt), e.ID)
		}
		return execRows(ctx, tx, ws.stateUpsert, stateUpsertColumns, args, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent record: %w", err)
	}
	return results, nil
}

// contactAddressesQuery reads the addresses of the contacts of a JSON array
// of ids: all that consent needs of them.
const contactAddressesQuery = `SELECT id, email, phone FROM contacts WHERE id IN (SELECT value FROM json_each(?))`

// contactAddresses returns the contacts of ids that exist, with only their
// id and addresses, through s, a contactAddressesQuery statement.
func contactAddresses(ctx context.Context, s *sql.Stmt, ids []string) (map[string]*nudge.Contact, error) {
	cs := make(map[string]*nudge.Contact, len(ids))
	if len(ids) == 0 {
		return cs, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, arr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c nudge.Contact
		if err := rows.Scan(&c.ID, &c.Email, &c.Phone); err != nil {
			return nil, err
		}
		cs[c.ID] = &c
	}
	return cs, rows.Err()
}

// stateKey names a consent state.
type stateKey struct{ hash, channel, purpose string }

// consentEntry checks a valid change of contact c's consent (nil: the
// contact does not exist), whose address hashes to hash ("": it has none),
// against the current states, and returns its ledger entry, without id.
func consentEntry(c *nudge.Contact, p *nudge.ConsentRecordParams, hash string, states map[stateKey]*nudge.ConsentState, now time.Time) (*nudge.ConsentEntry, error) {
	if c == nil && p.ContactID != "" {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "contact %q not found", p.ContactID)
	}
	if c == nil { // a change for an address no contact has
		c = &nudge.Contact{}
	}
	if hash == "" {
		what := "an email address"
		if p.Channel == nudge.ChannelSMS {
			what = "a phone number"
		}
		return nil, nudge.FieldErrorf("channel", "contact %q has no %s: consent for %s needs one", c.ID, what, p.Channel)
	}
	if err := nudge.CheckConsentChange(states[stateKey{hash, p.Channel, p.Purpose}], p); err != nil {
		return nil, err
	}
	occurred := p.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	return &nudge.ConsentEntry{
		ContactID:   c.ID,
		AddressHash: hash,
		Channel:     p.Channel,
		Purpose:     p.Purpose,
		Status:      p.Status,
		Source:      p.Source,
		Evidence:    p.Evidence,
		OccurredAt:  fromMicros(micros(occurred)),
		RecordedAt:  fromMicros(micros(now)),
	}, nil
}

const (
	ledgerInsertColumns = 10
	stateUpsertColumns  = 7
)

// ledgerInsertQuery appends n entries to the ledger and returns their ids.
func ledgerInsertQuery(n int) string {
	return `INSERT INTO consent_ledger
		(contact_id, address_hash, channel, purpose, status, source, evidence, occurred_at, recorded_at, idempotency_key)
		VALUES ` + valuesRows(n, ledgerInsertColumns) + ` RETURNING id`
}

// consentDuplicates marks Duplicate the results of the changes whose
// idempotency key is in the ledger already, or on an earlier change of ps.
func consentDuplicates(ctx context.Context, tx *sql.Tx, ps []*nudge.ConsentRecordParams, results []nudge.ConsentRecordResult) error {
	var keys []string
	for i, p := range ps {
		if results[i].Err == nil && p.IdempotencyKey != "" {
			keys = append(keys, p.IdempotencyKey)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	arr, err := jsonArray(keys)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT idempotency_key FROM consent_ledger
		WHERE idempotency_key IN (SELECT value FROM json_each(?))`, arr)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		seen[k] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, p := range ps {
		if results[i].Err != nil || p.IdempotencyKey == "" {
			continue
		}
		results[i].Duplicate = seen[p.IdempotencyKey]
		seen[p.IdempotencyKey] = true
	}
	return nil
}

// stateUpsertQuery sets n consent states, of distinct keys.
func stateUpsertQuery(n int) string {
	return `INSERT INTO consent_state
		(address_hash, channel, purpose, status, source, updated_at, entry_id)
		VALUES ` + valuesRows(n, stateUpsertColumns) + `
		ON CONFLICT (address_hash, channel, purpose) DO UPDATE SET
			status = excluded.status, source = excluded.source,
			updated_at = excluded.updated_at, entry_id = excluded.entry_id`
}

// consentStatesQuery reads the states of a JSON array of address hashes.
const consentStatesQuery = `SELECT address_hash, ` + consentStateColumns + `
	FROM consent_state WHERE address_hash IN (SELECT value FROM json_each(?))`

// consentStates returns the current states of the address hashes, through
// s, a consentStatesQuery statement.
func consentStates(ctx context.Context, s *sql.Stmt, hashes []string) (map[stateKey]*nudge.ConsentState, error) {
	states := map[stateKey]*nudge.ConsentState{}
	if len(hashes) == 0 {
		return states, nil
	}
	arr, err := jsonArray(hashes)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, arr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hash    string
			st      nudge.ConsentState
			updated int64
		)
		if err := rows.Scan(&hash, &st.Channel, &st.Purpose, &st.Status, &st.Source, &updated, &st.EntryID); err != nil {
			return nil, err
		}
		st.UpdatedAt = fromMicros(updated)
		states[stateKey{hash, st.Channel, st.Purpose}] = &st
	}
	return states, rows.Err()
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

// addressHashes returns the hashes of the contact's current addresses.
func addressHashes(h *nudge.AddressHasher, c *nudge.Contact) []string {
	var hs []string
	for _, ch := range nudge.Channels {
		if a := nudge.ContactAddress(c, ch); a != "" {
			hs = append(hs, h.Hash(ch, a))
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
		hs := addressHashes(nudge.NewAddressHasher(key), c)
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
			for _, h := range addressHashes(nudge.NewAddressHasher(key), c) {
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
