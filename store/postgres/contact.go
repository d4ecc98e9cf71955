package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

const contactColumns = `id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, created_at, updated_at`

func scanContact(row pgx.Row) (*nudge.Contact, error) {
	var c nudge.Contact
	if err := row.Scan(&c.ID, &c.Email, &c.Phone, &c.Timezone, &c.LifecycleStage, &c.JourneyStage,
		&c.IsCustomer, &c.Attributes, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return &c, nil
}

// attributesJSON encodes attributes for a jsonb column; nil is {}.
func attributesJSON(m map[string]any) ([]byte, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nudge.FieldErrorf("attributes", "cannot be encoded as JSON: %v", err)
	}
	return b, nil
}

// ContactGet returns the contact, or ENOTFOUND.
func (db *DB) ContactGet(ctx context.Context, id string) (*nudge.Contact, error) {
	c, err := scanContact(db.pool.QueryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("contact get: %w", contactNotFound(id))
	}
	if err != nil {
		return nil, wrap("contact get", err)
	}
	return c, nil
}

// ContactGetMany returns the contacts of ids that exist, by id, in one
// statement; ids that do not exist are absent from the map.
func (db *DB) ContactGetMany(ctx context.Context, ids []string) (map[string]*nudge.Contact, error) {
	cs := make(map[string]*nudge.Contact, len(ids))
	if len(ids) == 0 {
		return cs, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("contact get many", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, wrap("contact get many", err)
		}
		cs[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("contact get many", err)
	}
	return cs, nil
}

func contactNotFound(id string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "contact %q not found", id)
}

// ContactList returns a page of contacts matching the filters, in id order.
func (db *DB) ContactList(ctx context.Context, p *nudge.ContactListParams) (*nudge.ContactPage, error) {
	if p == nil {
		p = &nudge.ContactListParams{}
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if p.Email != "" {
		where = append(where, "email = "+arg(p.Email))
	}
	if p.Phone != "" {
		where = append(where, "phone = "+arg(p.Phone))
	}
	if p.LifecycleStage != "" {
		where = append(where, "lifecycle_stage = "+arg(p.LifecycleStage))
	}
	if p.JourneyStage != "" {
		where = append(where, "journey_stage = "+arg(p.JourneyStage))
	}
	if p.IsCustomer != nil {
		where = append(where, "is_customer = "+arg(*p.IsCustomer))
	}
	keys := make([]string, 0, len(p.Attributes))
	for k := range p.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := p.Attributes[k]
		// The filter compares the attribute's text form: a string as it
		// is, other JSON values as JSON writes them ("42", "true", "null").
		// The containment tests before it say the same thing in a form the
		// GIN index (jsonb_path_ops) can answer: the value is either the
		// string v, or the JSON value v spells.
		cands := []string{arg(mustJSON(map[string]any{k: v}))}
		var parsed any
		if json.Unmarshal([]byte(v), &parsed) == nil {
			if _, isString := parsed.(string); !isString {
				cands = append(cands, arg(json.RawMessage(`{`+string(mustJSON(k))+`:`+v+`}`)))
			}
		}
		var ors []string
		for _, c := range cands {
			ors = append(ors, "attributes @> "+c+"::jsonb")
		}
		// With the key known to exist, a NULL from ->> is a JSON null.
		where = append(where, "("+strings.Join(ors, " OR ")+") AND coalesce(attributes->>"+arg(k)+", 'null') = "+arg(v))
	}
	if !p.UpdatedAfter.IsZero() {
		where = append(where, "updated_at > "+arg(utc(p.UpdatedAfter)))
	}
	if p.Cursor != "" {
		after, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "id > "+arg(after))
	}
	n := limit(p.Limit, 50, 1000)
	q := `SELECT ` + contactColumns + ` FROM contacts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id LIMIT ` + arg(n+1)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("contact list", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Contact, error) { return scanContact(r) })
	if err != nil {
		return nil, wrap("contact list", err)
	}
	page := &nudge.ContactPage{Contacts: cs}
	if len(cs) > n {
		page.Contacts = cs[:n]
		page.NextCursor = encodeCursor(cs[n-1].ID)
	}
	if page.Contacts == nil {
		page.Contacts = []*nudge.Contact{}
	}
	return page, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ContactPut creates or replaces a contact wholly.
func (db *DB) ContactPut(ctx context.Context, c *nudge.Contact, now time.Time) (*nudge.Contact, bool, error) {
	if c == nil || c.ID == "" {
		return nil, false, nudge.FieldErrorf("id", "required")
	}
	attrs, err := attributesJSON(c.Attributes)
	if err != nil {
		return nil, false, err
	}
	now = utc(now)
	// One batch, one implicit transaction: the first statement locks the
	// contact if it exists, so the second's snapshot holds its latest
	// state, which tells whether the put changes it. Only a created or
	// changed contact leaves an inbox item; updated_at moves either way.
	b := &pgx.Batch{}
	b.Queue(`SELECT FROM contacts WHERE id = $1 FOR NO KEY UPDATE`, c.ID)
	var (
		out     nudge.Contact
		created bool
	)
	b.Queue(`
		WITH old AS (
			SELECT `+contactColumns+` FROM contacts WHERE id = $1
		), up AS (
			INSERT INTO contacts (`+contactColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			ON CONFLICT (id) DO UPDATE SET
				email = excluded.email, phone = excluded.phone, timezone = excluded.timezone,
				lifecycle_stage = excluded.lifecycle_stage, journey_stage = excluded.journey_stage,
				is_customer = excluded.is_customer, attributes = excluded.attributes,
				updated_at = excluded.updated_at
			RETURNING `+contactColumns+`, xmax = 0 AS created
		), queued AS (
			INSERT INTO inbox (contact_id, at, contact_before, contact_after)
			SELECT up.id, $9, (SELECT to_jsonb(old) FROM old), to_jsonb(up) - 'created' FROM up
			WHERE up.created OR NOT EXISTS (
				SELECT FROM old WHERE (old.email, old.phone, old.timezone, old.lifecycle_stage,
					old.journey_stage, old.is_customer, old.attributes)
					= (up.email, up.phone, up.timezone, up.lifecycle_stage,
					up.journey_stage, up.is_customer, up.attributes))
		)
		SELECT * FROM up`,
		c.ID, c.Email, c.Phone, c.Timezone, c.LifecycleStage, c.JourneyStage, c.IsCustomer, attrs, now,
	).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.ID, &out.Email, &out.Phone, &out.Timezone, &out.LifecycleStage, &out.JourneyStage,
			&out.IsCustomer, &out.Attributes, &out.CreatedAt, &out.UpdatedAt, &created)
	})
	if _, err := retry(func() (struct{}, error) { return struct{}{}, db.pool.SendBatch(ctx, b).Close() }); err != nil {
		return nil, false, wrap("contact put", err)
	}
	if out.Attributes == nil {
		out.Attributes = map[string]any{}
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return &out, created, nil
}

// ContactMerge applies patches in order in one transaction, creating the
// contacts that do not exist.
func (db *DB) ContactMerge(ctx context.Context, patches []*nudge.ContactPatch, now time.Time) ([]nudge.ContactMergeResult, error) {
	for i, p := range patches {
		if p == nil || p.ID == "" {
			return nil, nudge.WithField(fmt.Sprintf("[%d]", i), nudge.FieldErrorf("id", "required"))
		}
	}
	now = utc(now)
	var results []nudge.ContactMergeResult
	err := db.inTx(ctx, "contact merge", func(tx pgx.Tx) error {
		results = make([]nudge.ContactMergeResult, len(patches))
		ids := make([]string, len(patches))
		for i, p := range patches {
			ids[i] = p.ID
		}
		created, err := createContacts(ctx, tx, ids, now)
		if err != nil {
			return err
		}
		cs, err := lockContacts(ctx, tx, ids)
		if err != nil {
			return err
		}
		// Every patched contact is written (its updated_at moves); only a
		// created or changed one leaves an inbox item.
		touched, changed := map[string]bool{}, map[string]bool{}
		for id := range created {
			changed[id] = true
		}
		befores := map[string]*nudge.Contact{} // for the inbox; none: created
		for i, p := range patches {
			c := cs[p.ID]
			keepBefore(befores, c, created[p.ID])
			before := contentKey(c)
			p.Apply(c)
			c.UpdatedAt = now
			touched[p.ID] = true
			if contentKey(c) != before {
				changed[p.ID] = true
			}
			results[i] = nudge.ContactMergeResult{Contact: c.Clone(), Created: created[p.ID]}
			created[p.ID] = false // later patches of the same contact update it
		}
		if err := updateContacts(ctx, tx, cs, touched); err != nil {
			return err
		}
		return insertInbox(ctx, tx, sortedKeys(changed), befores, cs, now)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// contentKey is what a contact says, without its id and timestamps: two
// states of a contact with equal keys are the same to a journey.
func contentKey(c *nudge.Contact) string {
	a, err := attributesJSON(c.Attributes)
	if err != nil {
		a = nil // updateContacts reports it
	}
	return string(mustJSON([]any{c.Email, c.Phone, c.Timezone, c.LifecycleStage, c.JourneyStage, c.IsCustomer, string(a)}))
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sortedUnique returns the distinct non-empty ids, sorted bytewise (the
// order of the "C" collation), which is the order every transaction locks
// contacts in.
func sortedUnique(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// createContacts inserts empty contacts for the ids that do not exist, in id
// order, and returns the set of ids it created.
func createContacts(ctx context.Context, tx pgx.Tx, ids []string, now time.Time) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `
		INSERT INTO contacts (id, created_at, updated_at)
		SELECT id, $2, $2 FROM unnest($1::text[]) AS id ORDER BY id
		ON CONFLICT (id) DO NOTHING
		RETURNING id`, sortedUnique(ids), now)
	if err != nil {
		return nil, err
	}
	created := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		created[id] = true
	}
	return created, rows.Err()
}

// lockContacts reads and locks the contacts, in id order. FOR NO KEY UPDATE
// does not conflict with the KEY SHARE locks that inserting events (foreign
// key checks) takes, so tracking does not wait on identify.
func lockContacts(ctx context.Context, tx pgx.Tx, ids []string) (map[string]*nudge.Contact, error) {
	rows, err := tx.Query(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, sortedUnique(ids))
	if err != nil {
		return nil, err
	}
	cs := map[string]*nudge.Contact{}
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		cs[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id != "" && cs[id] == nil {
			// Created in this transaction, so it cannot have vanished.
			return nil, fmt.Errorf("contact %q not found after creation", id)
		}
	}
	return cs, nil
}

// updateContacts writes back the contacts in changed with one statement.
func updateContacts(ctx context.Context, tx pgx.Tx, cs map[string]*nudge.Contact, changed map[string]bool) error {
	if len(changed) == 0 {
		return nil
	}
	n := len(changed)
	var (
		ids, emails, phones, tzs, lcs, jss, attrs = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n),
			make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		custs   = make([]bool, 0, n)
		updated = make([]time.Time, 0, n)
	)
	for id := range changed {
		c := cs[id]
		a, err := attributesJSON(c.Attributes)
		if err != nil {
			return err
		}
		ids, emails, phones, tzs = append(ids, c.ID), append(emails, c.Email), append(phones, c.Phone), append(tzs, c.Timezone)
		lcs, jss, custs = append(lcs, c.LifecycleStage), append(jss, c.JourneyStage), append(custs, c.IsCustomer)
		attrs, updated = append(attrs, string(a)), append(updated, c.UpdatedAt)
	}
	_, err := tx.Exec(ctx, `
		UPDATE contacts c SET email = u.email, phone = u.phone, timezone = u.timezone,
			lifecycle_stage = u.lifecycle_stage, journey_stage = u.journey_stage,
			is_customer = u.is_customer, attributes = u.attributes::jsonb, updated_at = u.updated_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], $9::timestamptz[])
			AS u(id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, updated_at)
		WHERE c.id = u.id`,
		ids, emails, phones, tzs, lcs, jss, custs, attrs, updated)
	return err
}

// ContactErase deletes a contact, its events and the engine's records of it
// (inbox items, enrollments, decisions, messages), and removes the contact id
// and evidence IP from its consent ledger entries (the only change the
// ledger allows). Consent state stays: it belongs to the address hash.
func (db *DB) ContactErase(ctx context.Context, id string, now time.Time) error {
	return db.inTx(ctx, "contact erase", func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM contacts WHERE id = $1 FOR UPDATE`, id).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return contactNotFound(id)
			}
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE consent_ledger SET contact_id = NULL, evidence = evidence - 'ip' WHERE contact_id = $1`, id); err != nil {
			return err
		}
		// Its tracked links keep redirecting, tied to nobody.
		if _, err := tx.Exec(ctx, `UPDATE links SET contact_id = '', message_id = '', journey_id = '', step_id = '' WHERE contact_id = $1`, id); err != nil {
			return err
		}
		// The engine's records of the contact go with it: its decision log
		// explains messages to a person who no longer exists here. What
		// its enrollments count in the reports goes first.
		if err := reportErase(ctx, tx, id); err != nil {
			return err
		}
		for _, table := range []string{"messages", "decisions", "enrollments", "inbox", "events"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE contact_id = $1`, id); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM contacts WHERE id = $1`, id)
		return err
	})
}
