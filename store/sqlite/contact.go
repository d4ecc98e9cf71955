package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

const contactColumns = `id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, created_at, updated_at`

type scanner interface {
	Scan(dest ...any) error
}

func scanContact(s scanner) (*nudge.Contact, error) {
	var (
		c                nudge.Contact
		attrs            string
		created, updated int64
	)
	if err := s.Scan(&c.ID, &c.Email, &c.Phone, &c.Timezone, &c.LifecycleStage, &c.JourneyStage,
		&c.IsCustomer, &attrs, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attrs), &c.Attributes); err != nil {
		return nil, fmt.Errorf("contact %s: attributes: %w", c.ID, err)
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	c.CreatedAt = fromMicros(created)
	c.UpdatedAt = fromMicros(updated)
	return &c, nil
}

// contactGetQuery is ContactGet's statement, prepared on the read pool.
const contactGetQuery = `SELECT ` + contactColumns + ` FROM contacts WHERE id = ?`

// ContactGet returns the contact, or ENOTFOUND.
func (db *DB) ContactGet(ctx context.Context, id string) (*nudge.Contact, error) {
	s, err := db.readStmt(ctx, contactGetQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact get: %w", err)
	}
	c, err := scanContact(s.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = nudge.Errorf(nudge.ENOTFOUND, "contact %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact get: %w", err)
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
	s, err := db.readStmt(ctx, contactsGetQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact get many: %w", err)
	}
	if err := scanContacts(ctx, s, ids, cs); err != nil {
		return nil, fmt.Errorf("sqlite: contact get many: %w", err)
	}
	return cs, nil
}

// contactsGetQuery reads the contacts of a JSON array of ids.
const contactsGetQuery = `SELECT ` + contactColumns + ` FROM contacts WHERE id IN (SELECT value FROM json_each(?))`

// scanContacts adds the contacts of ids that exist to cs, through s, a
// contactsGetQuery statement.
func scanContacts(ctx context.Context, s *sql.Stmt, ids []string, cs map[string]*nudge.Contact) error {
	arr, err := jsonArray(ids)
	if err != nil {
		return err
	}
	rows, err := s.QueryContext(ctx, arr)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return err
		}
		cs[c.ID] = c
	}
	return rows.Err()
}

func getContact(ctx context.Context, q querier, id string) (*nudge.Contact, error) {
	c, err := scanContact(q.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nudge.Errorf(nudge.ENOTFOUND, "contact %q not found", id)
	}
	return c, err
}

// normalize returns a copy of c as it is stored: UTC times at microsecond
// precision, attributes as JSON would give them back.
func normalize(c *nudge.Contact) (*nudge.Contact, string, error) {
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return nil, "", nudge.FieldErrorf("attributes", "cannot be stored as JSON: %v", err)
	}
	cc := *c
	cc.Attributes = nil
	if err := json.Unmarshal(b, &cc.Attributes); err != nil {
		return nil, "", err
	}
	cc.CreatedAt = fromMicros(micros(c.CreatedAt))
	cc.UpdatedAt = fromMicros(micros(c.UpdatedAt))
	return &cc, string(b), nil
}

const contactColumnCount = 10

// contactsPutQuery writes n contacts, created or replaced, keeping
// created_at of an existing row.
func contactsPutQuery(n int) string {
	return `INSERT INTO contacts (` + contactColumns + `)
		VALUES ` + valuesRows(n, contactColumnCount) + `
		ON CONFLICT (id) DO UPDATE SET
			email = excluded.email, phone = excluded.phone, timezone = excluded.timezone,
			lifecycle_stage = excluded.lifecycle_stage, journey_stage = excluded.journey_stage,
			is_customer = excluded.is_customer, attributes = excluded.attributes,
			updated_at = excluded.updated_at`
}

// putContacts writes contacts in their stored form (normalize's), with
// their attributes as JSON, in one statement per maxBatchRows of them.
func putContacts(ctx context.Context, tx *sql.Tx, ws *writeStmts, cs []*nudge.Contact, attrs []string) error {
	args := make([]any, 0, len(cs)*contactColumnCount)
	for i, n := range cs {
		args = append(args, n.ID, n.Email, n.Phone, n.Timezone, n.LifecycleStage, n.JourneyStage, n.IsCustomer, attrs[i],
			micros(n.CreatedAt), micros(n.UpdatedAt))
	}
	return execRows(ctx, tx, ws.contactsPut, contactColumnCount, args, nil)
}

// ContactPut creates or replaces a contact wholly. A contact it creates or
// changes is left in the engine's inbox; one put as it was is not.
func (db *DB) ContactPut(ctx context.Context, c *nudge.Contact, now time.Time) (*nudge.Contact, bool, error) {
	if c == nil || c.ID == "" {
		return nil, false, nudge.FieldErrorf("id", "required")
	}
	var (
		stored  *nudge.Contact
		created bool
	)
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: contact put: %w", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		cc := c.Clone()
		cc.CreatedAt, cc.UpdatedAt = now, now
		cur := map[string]*nudge.Contact{}
		if err := scanContacts(ctx, tx.StmtContext(ctx, ws.contactsGet), []string{c.ID}, cur); err != nil {
			return err
		}
		old := cur[c.ID]
		if old == nil {
			created = true
		} else {
			cc.CreatedAt = old.CreatedAt
		}
		var (
			attrs string
			err   error
		)
		if stored, attrs, err = normalize(cc); err != nil {
			return err
		}
		if err := putContacts(ctx, tx, ws, []*nudge.Contact{stored}, []string{attrs}); err != nil {
			return err
		}
		if created || !sameContact(old, stored) {
			return inboxAddContacts(ctx, tx, ws, []contactChange{{ID: c.ID, Before: old, After: stored}}, now)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: contact put: %w", err)
	}
	return stored, created, nil
}

// ContactMerge applies patches in order in one transaction. Each contact the
// patches create or change is left in the engine's inbox once, however many
// patches it had; a contact they leave as it was is not.
func (db *DB) ContactMerge(ctx context.Context, patches []*nudge.ContactPatch, now time.Time) ([]nudge.ContactMergeResult, error) {
	if err := checkPatches(patches); err != nil {
		return nil, err
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact merge: %w", err)
	}
	var results []nudge.ContactMergeResult
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		results, err = mergeContacts(ctx, tx, ws, patches, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact merge: %w", err)
	}
	return results, nil
}

func checkPatches(patches []*nudge.ContactPatch) error {
	for i, p := range patches {
		if p == nil || p.ID == "" {
			return nudge.WithField(fmt.Sprintf("[%d]", i), nudge.FieldErrorf("id", "required"))
		}
	}
	return nil
}

// mergeContacts applies patches in order and leaves each contact they
// created or changed in the inbox, once, in the order of its first change.
func mergeContacts(ctx context.Context, tx *sql.Tx, ws *writeStmts, patches []*nudge.ContactPatch, now time.Time) ([]nudge.ContactMergeResult, error) {
	results, befores, err := applyPatches(ctx, tx, ws, patches, now, nil)
	if err != nil {
		return nil, err
	}
	return results, inboxAddContacts(ctx, tx, ws, contactChanges(results, befores), now)
}

// applyPatches applies patches in order: it reads the contacts they name in
// one statement, applies each patch to the contact as the patches before it
// left it, and writes each contact once, as the last of its patches left
// it. It returns the result of each patch and the contact each patch found
// (nil: none). An error of patch i is passed through wrap, if not nil.
func applyPatches(ctx context.Context, tx *sql.Tx, ws *writeStmts, patches []*nudge.ContactPatch, now time.Time,
	wrap func(i int, err error) error) ([]nudge.ContactMergeResult, []*nudge.Contact, error) {
	results := make([]nudge.ContactMergeResult, 0, len(patches))
	if len(patches) == 0 {
		return results, nil, nil
	}
	idx := make(map[string]int, len(patches)) // contact id: its index in ids
	ids := make([]string, 0, len(patches))
	for _, p := range patches {
		if _, ok := idx[p.ID]; !ok {
			idx[p.ID] = len(ids)
			ids = append(ids, p.ID)
		}
	}
	cur := make(map[string]*nudge.Contact, len(ids))
	if err := scanContacts(ctx, tx.StmtContext(ctx, ws.contactsGet), ids, cur); err != nil {
		return nil, nil, err
	}
	final := make([]*nudge.Contact, len(ids))
	attrs := make([]string, len(ids))
	befores := make([]*nudge.Contact, 0, len(patches))
	for pi, p := range patches {
		i := idx[p.ID]
		old := cur[p.ID]
		var c *nudge.Contact
		if old == nil {
			c = &nudge.Contact{ID: p.ID, Attributes: map[string]any{}, CreatedAt: now}
		} else {
			c = old.Clone()
		}
		p.Apply(c)
		c.UpdatedAt = now
		stored, a, err := normalize(c)
		if err != nil {
			if wrap != nil {
				err = wrap(pi, err)
			}
			return nil, nil, err
		}
		cur[p.ID], final[i], attrs[i] = stored, stored, a
		results = append(results, nudge.ContactMergeResult{Contact: stored, Created: old == nil})
		befores = append(befores, old)
	}
	if err := putContacts(ctx, tx, ws, final, attrs); err != nil {
		return nil, nil, err
	}
	return results, befores, nil
}

// sameContact reports whether two stored forms of a contact have the same
// fields and attributes, timestamps aside. Attributes are compared as JSON,
// which encoding/json writes with sorted keys.
func sameContact(a, b *nudge.Contact) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Email != b.Email || a.Phone != b.Phone || a.Timezone != b.Timezone || a.LifecycleStage != b.LifecycleStage ||
		a.JourneyStage != b.JourneyStage || a.IsCustomer != b.IsCustomer || len(a.Attributes) != len(b.Attributes) {
		return false
	}
	ja, err1 := json.Marshal(a.Attributes)
	jb, err2 := json.Marshal(b.Attributes)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// ContactList returns a page of contacts matching the filters, by id.
func (db *DB) ContactList(ctx context.Context, p *nudge.ContactListParams) (*nudge.ContactPage, error) {
	if p == nil {
		p = &nudge.ContactListParams{}
	}
	var (
		where []string
		args  []any
	)
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("email", p.Email)
	eq("phone", p.Phone)
	eq("lifecycle_stage", p.LifecycleStage)
	eq("journey_stage", p.JourneyStage)
	if p.IsCustomer != nil {
		where = append(where, "is_customer = ?")
		args = append(args, *p.IsCustomer)
	}
	// An attribute matches when its JSON scalar, as text, equals the
	// filter: strings without quotes, numbers and booleans as JSON writes
	// them. json_each finds the key without building a JSON path from it.
	for _, k := range slices.Sorted(maps.Keys(p.Attributes)) {
		where = append(where, `EXISTS (SELECT 1 FROM json_each(contacts.attributes) AS a
			WHERE a.key = ? AND CASE a.type WHEN 'text' THEN a.value ELSE contacts.attributes -> a.fullkey END = ?)`)
		args = append(args, k, p.Attributes[k])
	}
	if !p.UpdatedAfter.IsZero() {
		where = append(where, "updated_at > ?")
		args = append(args, micros(p.UpdatedAfter))
	}
	if p.Cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(after) == 0 {
			return nil, nudge.FieldErrorf("cursor", "not a cursor this list returned")
		}
		where = append(where, "id > ?")
		args = append(args, string(after))
	}
	n := limit(p.Limit, 50, 1000)
	q := `SELECT ` + contactColumns + ` FROM contacts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, n+1)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list: %w", err)
	}
	defer rows.Close()
	page := &nudge.ContactPage{Contacts: []*nudge.Contact{}}
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: contact list: %w", err)
		}
		page.Contacts = append(page.Contacts, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: contact list: %w", err)
	}
	if len(page.Contacts) > n {
		page.Contacts = page.Contacts[:n]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Contacts[n-1].ID))
	}
	return page, nil
}

// ContactErase deletes a contact, its events and everything the engine keeps
// about it: its inbox items, its enrollments, and their decisions and
// messages (queued ones are not sent). Its consent ledger entries stay,
// keyed by address hash, without the contact id or the evidence IP; the
// consent state stays too, since it belongs to the address.
func (db *DB) ContactErase(ctx context.Context, id string, now time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM contacts WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nudge.Errorf(nudge.ENOTFOUND, "contact %q not found", id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE consent_ledger
			SET contact_id = NULL, evidence = json_remove(evidence, '$.ip')
			WHERE contact_id = ?`, id); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE links SET contact_id = '', message_id = '', journey_id = '', step_id = '' WHERE contact_id = ?`,
			`DELETE FROM events WHERE contact_id = ?`,
			`DELETE FROM inbox WHERE contact_id = ?`, // and db.inbox's, below
			`DELETE FROM decisions WHERE contact_id = ?`,
			`DELETE FROM messages WHERE contact_id = ?`,
			`DELETE FROM enrollments WHERE contact_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		db.inbox.erase(id)
		_, err = tx.ExecContext(ctx, `DELETE FROM contacts WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: contact erase: %w", err)
	}
	return nil
}
