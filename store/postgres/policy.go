package postgres

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var (
	_ nudge.PolicyStore     = (*DB)(nil)
	_ nudge.PolicyFactStore = (*DB)(nil)
)

// policyLock keys the advisory lock that serializes policy publishes. It is
// mixed with the schema name, as migrateLock is, so that workspaces in one
// database publish independently.
const policyLock = "nudge.policy"

const (
	policyVersionColumns = `version, source, hash, published_at`
	policyLatestQuery    = `SELECT ` + policyVersionColumns + ` FROM policy_versions ORDER BY version DESC LIMIT 1`
)

func scanPolicyVersion(row pgx.Row) (*nudge.PolicyVersion, error) {
	var v nudge.PolicyVersion
	if err := row.Scan(&v.Version, &v.Source, &v.Hash, &v.PublishedAt); err != nil {
		return nil, err
	}
	v.PublishedAt = v.PublishedAt.UTC()
	return &v, nil
}

// PolicyPublish stores source as the policy's next version, unless it is
// the latest version's source. hash may be empty: the store computes the
// sha256 of source and refuses a hash that differs from it. Publishes hold
// a transaction-scoped advisory lock while they choose the version number,
// so concurrent publishes number their versions in turn.
func (db *DB) PolicyPublish(ctx context.Context, source []byte, hash string, now time.Time) (*nudge.PolicyVersion, bool, error) {
	if len(source) == 0 {
		return nil, false, nudge.FieldErrorf("source", "required")
	}
	sum := sha256.Sum256(source)
	h := hex.EncodeToString(sum[:])
	if hash != "" && hash != h {
		return nil, false, nudge.FieldErrorf("hash", "%s is not the sha256 of the source (%s)", hash, h)
	}
	now = utc(now)
	var (
		v       *nudge.PolicyVersion
		created bool
	)
	err := db.inTx(ctx, "policy publish", func(tx pgx.Tx) error {
		v, created = nil, false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || '.' || current_schema(), 0))`, policyLock); err != nil {
			return err
		}
		latest, err := scanPolicyVersion(tx.QueryRow(ctx, policyLatestQuery))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			latest = &nudge.PolicyVersion{}
		case err != nil:
			return err
		case latest.Hash == h:
			v = latest
			return nil
		}
		v = &nudge.PolicyVersion{Version: latest.Version + 1, Source: slices.Clone(source), Hash: h, PublishedAt: now}
		created = true
		_, err = tx.Exec(ctx, `INSERT INTO policy_versions (version, source, hash, published_at) VALUES ($1, $2, $3, $4)`,
			v.Version, v.Source, v.Hash, v.PublishedAt)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return v, created, nil
}

// PolicyGet returns a version with its Source; version 0 means the latest.
// ENOTFOUND if there is none.
func (db *DB) PolicyGet(ctx context.Context, version int64) (*nudge.PolicyVersion, error) {
	var row pgx.Row
	if version == 0 {
		row = db.pool.QueryRow(ctx, policyLatestQuery)
	} else {
		row = db.pool.QueryRow(ctx, `SELECT `+policyVersionColumns+` FROM policy_versions WHERE version = $1`, version)
	}
	v, err := scanPolicyVersion(row)
	if errors.Is(err, pgx.ErrNoRows) {
		if version == 0 {
			return nil, fmt.Errorf("policy get: %w", nudge.Errorf(nudge.ENOTFOUND, "no policy has been published"))
		}
		return nil, fmt.Errorf("policy get: %w", nudge.Errorf(nudge.ENOTFOUND, "policy version %d not found", version))
	}
	if err != nil {
		return nil, wrap("policy get", err)
	}
	return v, nil
}

// PolicyVersionList returns all versions, oldest first, without Source.
func (db *DB) PolicyVersionList(ctx context.Context) ([]*nudge.PolicyVersion, error) {
	rows, err := db.pool.Query(ctx, `SELECT version, hash, published_at FROM policy_versions ORDER BY version`)
	if err != nil {
		return nil, wrap("policy version list", err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.PolicyVersion, error) {
		var v nudge.PolicyVersion
		err := r.Scan(&v.Version, &v.Hash, &v.PublishedAt)
		v.PublishedAt = v.PublishedAt.UTC()
		return &v, err
	})
	if err != nil {
		return nil, wrap("policy version list", err)
	}
	if vs == nil {
		vs = []*nudge.PolicyVersion{}
	}
	return vs, nil
}

const suppressionColumns = `id, channel, address_hash, address_masked, reason, source, note, created_at`

func scanSuppression(row pgx.Row) (*nudge.Suppression, error) {
	var x nudge.Suppression
	if err := row.Scan(&x.ID, &x.Channel, &x.AddressHash, &x.AddressMasked, &x.Reason, &x.Source, &x.Note, &x.CreatedAt); err != nil {
		return nil, err
	}
	x.CreatedAt = x.CreatedAt.UTC()
	return &x, nil
}

func collectSuppressions(rows pgx.Rows) ([]*nudge.Suppression, error) {
	xs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Suppression, error) { return scanSuppression(r) })
	if xs == nil {
		xs = []*nudge.Suppression{}
	}
	return xs, err
}

// suppressionKey names a suppression: its unique key.
type suppressionKey struct{ channel, hash, reason string }

// SuppressionAdd adds addresses to the suppression list, in one
// transaction, and returns their entries in the order of ps. An address
// already suppressed for the same reason keeps its entry as it is. One
// invalid address refuses the whole batch. The new entries are inserted by
// one statement, and all the entries read back by another.
func (db *DB) SuppressionAdd(ctx context.Context, ps []*nudge.SuppressionAddParams, now time.Time) ([]*nudge.Suppression, error) {
	out := make([]*nudge.Suppression, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	addrs, err := nudge.CheckSuppressions(ps)
	if err != nil {
		return nil, err
	}
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("suppression add: %w", err)
	}
	now = utc(now)
	keys := make([]suppressionKey, len(ps))
	var channels, hashes, masked, reasons, sources, notes []string
	for i, p := range ps {
		keys[i] = suppressionKey{p.Channel, nudge.AddressHash(secret, p.Channel, addrs[i]), p.Reason}
		channels = append(channels, p.Channel)
		hashes = append(hashes, keys[i].hash)
		masked = append(masked, nudge.MaskAddress(p.Channel, addrs[i]))
		reasons = append(reasons, p.Reason)
		sources = append(sources, p.Source)
		notes = append(notes, p.Note)
	}
	err = db.inTx(ctx, "suppression add", func(tx pgx.Tx) error {
		// In the order of ps, so that the ids of new entries are too.
		if _, err := tx.Exec(ctx, `
			INSERT INTO suppressions (channel, address_hash, address_masked, reason, source, note, created_at)
			SELECT channel, address_hash, address_masked, reason, source, note, $7
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
				AS s(channel, address_hash, address_masked, reason, source, note, ord)
			ORDER BY ord
			ON CONFLICT (channel, address_hash, reason) DO NOTHING`,
			channels, hashes, masked, reasons, sources, notes, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions
			WHERE (channel, address_hash, reason) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
			channels, hashes, reasons)
		if err != nil {
			return err
		}
		xs, err := collectSuppressions(rows)
		if err != nil {
			return err
		}
		byKey := make(map[suppressionKey]*nudge.Suppression, len(xs))
		for _, x := range xs {
			byKey[suppressionKey{x.Channel, x.AddressHash, x.Reason}] = x
		}
		for i, k := range keys {
			if out[i] = byKey[k]; out[i] == nil {
				return fmt.Errorf("suppression %d neither inserted nor found", i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return fmt.Errorf("suppression remove: %w", err)
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM suppressions WHERE channel = $1 AND address_hash = $2`,
		channel, nudge.AddressHash(secret, channel, a))
	if err != nil {
		return wrap("suppression remove", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("suppression remove: %w",
			nudge.Errorf(nudge.ENOTFOUND, "the %s address %s is not suppressed", channel, nudge.MaskAddress(channel, a)))
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
	rows, err := db.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions
		WHERE id > $1 AND ($2 = '' OR channel = $2) ORDER BY id LIMIT $3`, p.AfterID, p.Channel, limit(p.Limit, 100, 10000))
	if err != nil {
		return nil, wrap("suppression list", err)
	}
	xs, err := collectSuppressions(rows)
	if err != nil {
		return nil, wrap("suppression list", err)
	}
	return xs, nil
}

// hashedAddress is the hash of one of a contact's addresses.
type hashedAddress struct{ hash, channel string }

// contactHashes returns the ids of the contacts by the hash of each of
// their addresses, each id once per hash, with one hasher for all.
func contactHashes(secret []byte, contacts []*nudge.Contact) map[hashedAddress][]string {
	hashes := map[hashedAddress][]string{}
	hasher := nudge.NewAddressHasher(secret)
	for _, c := range contacts {
		if c == nil {
			continue
		}
		for _, ch := range nudge.Channels {
			a := nudge.ContactAddress(c, ch)
			if a == "" {
				continue
			}
			k := hashedAddress{hasher.Hash(ch, a), ch}
			if !slices.Contains(hashes[k], c.ID) {
				hashes[k] = append(hashes[k], c.ID)
			}
		}
	}
	return hashes
}

func hashList(hashes map[hashedAddress][]string) []string {
	hs := make([]string, 0, len(hashes))
	for k := range hashes {
		hs = append(hs, k.hash)
	}
	slices.Sort(hs)
	return slices.Compact(hs)
}

// SuppressionsFor returns, by contact id, the suppressions of the contacts'
// phone numbers (sms) and email addresses (email), as the contacts given
// hold them, in id order; a contact with none has no entry. The addresses
// of all the contacts are looked up in one statement.
func (db *DB) SuppressionsFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.Suppression, error) {
	out := map[string][]*nudge.Suppression{}
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("suppressions for: %w", err)
	}
	hashes := contactHashes(secret, contacts)
	if len(hashes) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions
		WHERE address_hash = ANY($1) ORDER BY id`, hashList(hashes))
	if err != nil {
		return nil, wrap("suppressions for", err)
	}
	xs, err := collectSuppressions(rows)
	if err != nil {
		return nil, wrap("suppressions for", err)
	}
	for _, x := range xs {
		for _, id := range hashes[hashedAddress{x.AddressHash, x.Channel}] {
			out[id] = append(out[id], x)
		}
	}
	return out, nil
}

// ConsentListMany returns, by contact id, the current consent of each
// contact's addresses, as ConsentList does; ids of no contact are absent.
// The contacts' addresses are read in one statement, the states of all of
// them in another.
func (db *DB) ConsentListMany(ctx context.Context, contactIDs []string) (map[string][]*nudge.ConsentState, error) {
	out := map[string][]*nudge.ConsentState{}
	if len(contactIDs) == 0 {
		return out, nil
	}
	secret, err := db.workspaceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("consent list many: %w", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT id, email, phone FROM contacts WHERE id = ANY($1)`, sortedUnique(contactIDs))
	if err != nil {
		return nil, wrap("consent list many", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Contact, error) {
		var c nudge.Contact
		err := r.Scan(&c.ID, &c.Email, &c.Phone)
		return &c, err
	})
	if err != nil {
		return nil, wrap("consent list many", err)
	}
	for _, c := range cs {
		out[c.ID] = []*nudge.ConsentState{}
	}
	hashes := contactHashes(secret, cs)
	if len(hashes) == 0 {
		return out, nil
	}
	rows, err = db.pool.Query(ctx, `SELECT address_hash, channel, purpose, status, source, updated_at, entry_id
		FROM consent_state WHERE address_hash = ANY($1)`, hashList(hashes))
	if err != nil {
		return nil, wrap("consent list many", err)
	}
	var (
		hash string
		s    nudge.ConsentState
	)
	_, err = pgx.ForEachRow(rows, []any{&hash, &s.Channel, &s.Purpose, &s.Status, &s.Source, &s.UpdatedAt, &s.EntryID}, func() error {
		for _, id := range hashes[hashedAddress{hash, s.Channel}] {
			st := s
			st.UpdatedAt = st.UpdatedAt.UTC()
			out[id] = append(out[id], &st)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("consent list many", err)
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b *nudge.ConsentState) int {
			return cmp.Or(strings.Compare(a.Channel, b.Channel), strings.Compare(a.Purpose, b.Purpose))
		})
	}
	return out, nil
}

// MessageRecent returns, by contact id, the contacts' messages created at
// or after since that are queued, sending, sent or delivered, oldest first,
// read in one statement, without what the caps do not read (see
// messageRecentColumns).
func (db *DB) MessageRecent(ctx context.Context, contactIDs []string, since time.Time) (map[string][]*nudge.Message, error) {
	out := map[string][]*nudge.Message{}
	if len(contactIDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+messageRecentColumns+` FROM messages
		WHERE contact_id = ANY($1) AND created_at >= $2
			AND status IN ('queued', 'sending', 'sent', 'delivered', 'outcome_unknown')
		ORDER BY contact_id, created_at, id`, sortedUnique(contactIDs), utc(since))
	if err != nil {
		return nil, wrap("message recent", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, wrap("message recent", err)
	}
	for _, m := range ms {
		out[m.ContactID] = append(out[m.ContactID], m)
	}
	return out, nil
}
