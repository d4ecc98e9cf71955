package sqlite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

var (
	_ nudge.PolicyStore     = (*DB)(nil)
	_ nudge.PolicyFactStore = (*DB)(nil)
)

// PolicyPublish stores source as the policy's next version, unless it is
// the latest version's source. hash may be empty: the store computes the
// sha256 of source and refuses a hash that differs from it.
func (db *DB) PolicyPublish(ctx context.Context, source []byte, hash string, now time.Time) (*nudge.PolicyVersion, bool, error) {
	if len(source) == 0 {
		return nil, false, nudge.FieldErrorf("source", "required")
	}
	sum := sha256.Sum256(source)
	h := hex.EncodeToString(sum[:])
	if hash != "" && hash != h {
		return nil, false, nudge.FieldErrorf("hash", "%s is not the sha256 of the source (%s)", hash, h)
	}
	var (
		v       *nudge.PolicyVersion
		created bool
	)
	// The write transaction holds SQLite's write lock: publishes number
	// their versions in turn.
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		latest, err := scanPolicyVersion(tx.QueryRowContext(ctx, policyLatestQuery))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			latest = &nudge.PolicyVersion{}
		case err != nil:
			return err
		case latest.Hash == h:
			v = latest
			return nil
		}
		v = &nudge.PolicyVersion{Version: latest.Version + 1, Source: slices.Clone(source), Hash: h,
			PublishedAt: fromMicros(micros(now))}
		created = true
		_, err = tx.ExecContext(ctx, `INSERT INTO policy_versions (version, source, hash, published_at)
			VALUES (?, ?, ?, ?)`, v.Version, v.Source, v.Hash, micros(v.PublishedAt))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: policy publish: %w", err)
	}
	return v, created, nil
}

const (
	policyVersionColumns = `version, source, hash, published_at`
	policyLatestQuery    = `SELECT ` + policyVersionColumns + ` FROM policy_versions ORDER BY version DESC LIMIT 1`
	policyGetQuery       = `SELECT ` + policyVersionColumns + ` FROM policy_versions WHERE version = ?`
)

func scanPolicyVersion(s scanner) (*nudge.PolicyVersion, error) {
	var (
		v  nudge.PolicyVersion
		at int64
	)
	if err := s.Scan(&v.Version, &v.Source, &v.Hash, &at); err != nil {
		return nil, err
	}
	v.PublishedAt = fromMicros(at)
	return &v, nil
}

// PolicyGet returns a version with its Source; version 0 means the latest.
// ENOTFOUND if there is none.
func (db *DB) PolicyGet(ctx context.Context, version int64) (*nudge.PolicyVersion, error) {
	q, args := policyLatestQuery, []any(nil)
	if version != 0 {
		q, args = policyGetQuery, []any{version}
	}
	st, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy get: %w", err)
	}
	v, err := scanPolicyVersion(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		if version == 0 {
			err = nudge.Errorf(nudge.ENOTFOUND, "no policy has been published")
		} else {
			err = nudge.Errorf(nudge.ENOTFOUND, "policy version %d not found", version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy get: %w", err)
	}
	return v, nil
}

// PolicyVersionList returns all versions, oldest first, without Source.
func (db *DB) PolicyVersionList(ctx context.Context) ([]*nudge.PolicyVersion, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT version, hash, published_at FROM policy_versions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy version list: %w", err)
	}
	defer rows.Close()
	vs := []*nudge.PolicyVersion{}
	for rows.Next() {
		var (
			v  nudge.PolicyVersion
			at int64
		)
		if err := rows.Scan(&v.Version, &v.Hash, &at); err != nil {
			return nil, fmt.Errorf("sqlite: policy version list: %w", err)
		}
		v.PublishedAt = fromMicros(at)
		vs = append(vs, &v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: policy version list: %w", err)
	}
	return vs, nil
}

const (
	suppressionColumns  = `id, channel, address_hash, address_masked, reason, source, note, created_at`
	suppressionGetQuery = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE channel = ? AND address_hash = ? AND reason = ?`
	suppressionInsertQuery = `INSERT INTO suppressions
		(channel, address_hash, address_masked, reason, source, note, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`
	suppressionsOfQuery = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE address_hash IN (SELECT value FROM json_each(?)) ORDER BY id`
)

func scanSuppression(s scanner) (*nudge.Suppression, error) {
	var (
		x  nudge.Suppression
		at int64
	)
	if err := s.Scan(&x.ID, &x.Channel, &x.AddressHash, &x.AddressMasked, &x.Reason, &x.Source, &x.Note, &at); err != nil {
		return nil, err
	}
	x.CreatedAt = fromMicros(at)
	return &x, nil
}

// SuppressionAdd adds addresses to the suppression list, in one
// transaction, and returns their entries in the order of ps. An address
// already suppressed for the same reason keeps its entry as it is. One
// invalid address refuses the whole batch.
func (db *DB) SuppressionAdd(ctx context.Context, ps []*nudge.SuppressionAddParams, now time.Time) ([]*nudge.Suppression, error) {
	out := make([]*nudge.Suppression, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	addrs, err := nudge.CheckSuppressions(ps)
	if err != nil {
		return nil, err
	}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression add: %w", err)
	}
	// Prepared before the transaction: it holds the writer's one connection.
	get, err := db.stmt(ctx, suppressionGetQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression add: %w", err)
	}
	ins, err := db.stmt(ctx, suppressionInsertQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression add: %w", err)
	}
	created := fromMicros(micros(now))
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		get, ins := tx.StmtContext(ctx, get), tx.StmtContext(ctx, ins)
		for i, p := range ps {
			x := &nudge.Suppression{Channel: p.Channel, AddressHash: nudge.AddressHash(key, p.Channel, addrs[i]),
				AddressMasked: nudge.MaskAddress(p.Channel, addrs[i]), Reason: p.Reason, Source: p.Source, Note: p.Note,
				CreatedAt: created}
			cur, err := scanSuppression(get.QueryRowContext(ctx, x.Channel, x.AddressHash, x.Reason))
			if err == nil {
				out[i] = cur
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err := ins.QueryRowContext(ctx, x.Channel, x.AddressHash, x.AddressMasked, x.Reason, x.Source, x.Note,
				micros(x.CreatedAt)).Scan(&x.ID); err != nil {
				return err
			}
			out[i] = x
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression add: %w", err)
	}
	return out, nil
}

// SuppressionRemove removes an address's suppressions for a channel, for
// every reason; ENOTFOUND if it had none.
func (db *DB) SuppressionRemove(ctx context.Context, channel, address string) error {
	if err := nudge.OneOf("channel", channel, nudge.Channels); err != nil {
		return err
	}
	a, err := nudge.CheckAddress(channel, address)
	if err != nil {
		return err
	}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return fmt.Errorf("sqlite: suppression remove: %w", err)
	}
	st, err := db.stmt(ctx, `DELETE FROM suppressions WHERE channel = ? AND address_hash = ?`)
	if err != nil {
		return fmt.Errorf("sqlite: suppression remove: %w", err)
	}
	r, err := st.ExecContext(ctx, channel, nudge.AddressHash(key, channel, a))
	if err != nil {
		return fmt.Errorf("sqlite: suppression remove: %w", err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: suppression remove: %w", err)
	} else if n == 0 {
		return nudge.Errorf(nudge.ENOTFOUND, "the %s address %s is not suppressed", channel, nudge.MaskAddress(channel, a))
	}
	return nil
}

// SuppressionList pages the list by id, up to p.Limit (default 100, at
// most 10000) after p.AfterID, of one channel or all.
func (db *DB) SuppressionList(ctx context.Context, p *nudge.SuppressionListParams) ([]*nudge.Suppression, error) {
	if p == nil {
		p = &nudge.SuppressionListParams{}
	}
	if p.Channel != "" {
		if err := nudge.OneOf("channel", p.Channel, nudge.Channels); err != nil {
			return nil, err
		}
	}
	q := `SELECT ` + suppressionColumns + ` FROM suppressions WHERE id > ?`
	args := []any{p.AfterID}
	if p.Channel != "" {
		q += ` AND channel = ?`
		args = append(args, p.Channel)
	}
	st, err := db.readStmt(ctx, q+` ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression list: %w", err)
	}
	xs, err := querySuppressions(ctx, st, append(args, limit(p.Limit, 100, 10000))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppression list: %w", err)
	}
	return xs, nil
}

func querySuppressions(ctx context.Context, st *sql.Stmt, args ...any) ([]*nudge.Suppression, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	xs := []*nudge.Suppression{}
	for rows.Next() {
		x, err := scanSuppression(rows)
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	return xs, rows.Err()
}

// SuppressionsFor returns, by contact id, the suppressions of the contacts'
// phone numbers (sms) and email addresses (email), as the contacts given
// hold them, in id order; a contact with none has no entry. The addresses
// of all the contacts are looked up in one statement.
func (db *DB) SuppressionsFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.Suppression, error) {
	out := map[string][]*nudge.Suppression{}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppressions for: %w", err)
	}
	hashes := contactHashes(key, contacts)
	if len(hashes) == 0 {
		return out, nil
	}
	arr, err := jsonArray(slices.Sorted(maps.Keys(hashes)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppressions for: %w", err)
	}
	st, err := db.readStmt(ctx, suppressionsOfQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppressions for: %w", err)
	}
	xs, err := querySuppressions(ctx, st, arr)
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppressions for: %w", err)
	}
	for _, x := range xs {
		for _, id := range hashes[x.AddressHash] {
			out[id] = append(out[id], x)
		}
	}
	return out, nil
}

// contactHashes returns the ids of the contacts by the hash of each of
// their addresses, each id once per hash, with one hasher for all.
func contactHashes(key []byte, contacts []*nudge.Contact) map[string][]string {
	hashes := map[string][]string{}
	hasher := nudge.NewAddressHasher(key)
	for _, c := range contacts {
		if c == nil {
			continue
		}
		for _, h := range addressHashes(hasher, c) {
			if !slices.Contains(hashes[h], c.ID) {
				hashes[h] = append(hashes[h], c.ID)
			}
		}
	}
	return hashes
}

// ConsentListMany returns, by contact id, the current consent of each
// contact's addresses, as ConsentList does; ids of no contact are absent.
// The contacts' addresses are read in one statement, the states of all of
// them in another.
func (db *DB) ConsentListMany(ctx context.Context, contactIDs []string) (map[string][]*nudge.ConsentState, error) {
	if len(contactIDs) == 0 {
		return map[string][]*nudge.ConsentState{}, nil
	}
	cst, err := db.readStmt(ctx, contactAddressesQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list many: %w", err)
	}
	contacts, err := contactAddresses(ctx, cst, contactIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list many: %w", err)
	}
	cs := make([]*nudge.Contact, 0, len(contacts))
	for _, c := range contacts {
		cs = append(cs, c)
	}
	out, err := db.consentOf(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list many: %w", err)
	}
	return out, nil
}

// ConsentListFor is ConsentListMany of contacts the caller holds, at the
// addresses they hold: the engine's guardrails read a batch's contacts
// first, and their addresses need not be read again.
func (db *DB) ConsentListFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.ConsentState, error) {
	out, err := db.consentOf(ctx, contacts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent list for: %w", err)
	}
	return out, nil
}

// consentOf returns, by contact id, the current consent of each of the
// contacts' addresses, each contact's by channel and purpose, in one
// statement.
func (db *DB) consentOf(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.ConsentState, error) {
	out := make(map[string][]*nudge.ConsentState, len(contacts))
	if len(contacts) == 0 {
		return out, nil
	}
	key, err := db.workspaceKey(ctx, db.read)
	if err != nil {
		return nil, err
	}
	sst, err := db.readStmt(ctx, consentStatesQuery)
	if err != nil {
		return nil, err
	}
	hashes := contactHashes(key, contacts)
	states, err := consentStates(ctx, sst, slices.Sorted(maps.Keys(hashes)))
	if err != nil {
		return nil, err
	}
	for _, c := range contacts {
		if c != nil {
			out[c.ID] = []*nudge.ConsentState{}
		}
	}
	for k, st := range states {
		for _, id := range hashes[k.hash] {
			c := *st
			out[id] = append(out[id], &c)
		}
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b *nudge.ConsentState) int {
			return cmp.Or(strings.Compare(a.Channel, b.Channel), strings.Compare(a.Purpose, b.Purpose))
		})
	}
	return out, nil
}

// messageRecentQuery reads the messages that count toward frequency caps
// of a JSON array of contact ids, created at or after a time. The unary +
// keeps SQLite off the status index: with the ids bound as a parameter it
// would otherwise read every queued or sent message of the outbox.
const messageRecentQuery = `SELECT id, enrollment_id, contact_id, journey_id, version, step_id, channel, template,
		purpose, status, available_at, created_at, updated_at FROM messages
	WHERE contact_id IN (SELECT value FROM json_each(?)) AND created_at >= ?
		AND +status IN ('queued', 'sending', 'sent', 'delivered', 'outcome_unknown')
	ORDER BY contact_id, created_at, id`

// MessageRecent returns, by contact id, the contacts' messages created at
// or after since that are queued, sending, sent or delivered, oldest first,
// read in one statement, without their idempotency key, details, provider
// id, attempts and error: the caps do not read them, and a column fewer is
// less work for every row.
func (db *DB) MessageRecent(ctx context.Context, contactIDs []string, since time.Time) (map[string][]*nudge.Message, error) {
	out := map[string][]*nudge.Message{}
	if len(contactIDs) == 0 {
		return out, nil
	}
	arr, err := jsonArray(contactIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message recent: %w", err)
	}
	st, err := db.readStmt(ctx, messageRecentQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message recent: %w", err)
	}
	rows, err := st.QueryContext(ctx, arr, micros(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: message recent: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			m                       nudge.Message
			avail, created, updated int64
		)
		if err := rows.Scan(&m.ID, &m.EnrollmentID, &m.ContactID, &m.JourneyID, &m.Version, &m.StepID, &m.Channel,
			&m.Template, &m.Purpose, &m.Status, &avail, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: message recent: %w", err)
		}
		m.AvailableAt, m.CreatedAt, m.UpdatedAt = fromMicros(avail), fromMicros(created), fromMicros(updated)
		out[m.ContactID] = append(out[m.ContactID], &m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: message recent: %w", err)
	}
	return out, nil
}
