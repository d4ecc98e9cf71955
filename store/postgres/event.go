package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

// EventIngest stores items in one transaction. It inserts the events with
// one statement that reports which message ids were new, creates the
// contacts of the stored events and leaves each stored event in the
// engine's inbox, and merges the identify patches of the stored ones (which
// leave no inbox item of their own). Duplicates, of events stored before or of an earlier item of
// the same call, are skipped whole. A zero Timestamp or ReceivedAt is now.
func (db *DB) EventIngest(ctx context.Context, items []nudge.IngestItem, now time.Time) (*nudge.IngestResult, error) {
	res := &nudge.IngestResult{Duplicate: make([]bool, len(items))}
	if len(items) == 0 {
		return res, nil
	}
	now = utc(now)

	// Validate and encode outside the transaction.
	n := len(items)
	first := make(map[string]int, n) // message id: first item carrying it
	order := make([]int, 0, n)       // items to try to insert, in item order
	for i, it := range items {
		e := it.Event
		field := fmt.Sprintf("[%d]", i)
		switch {
		case e == nil:
			return nil, nudge.FieldErrorf(field, "event required")
		case e.MessageID == "":
			return nil, nudge.FieldErrorf(field+".message_id", "required")
		case e.ContactID == "":
			return nil, nudge.FieldErrorf(field+".contact_id", "required")
		case e.Type != nudge.EventIdentify && e.Type != nudge.EventTrack:
			return nil, nudge.FieldErrorf(field+".type", "%q is not one of identify, track", e.Type)
		}
		if _, dup := first[e.MessageID]; dup {
			res.Duplicate[i] = true
			continue
		}
		first[e.MessageID] = i
		order = append(order, i)
	}
	// Rows go in in message id order: two batches sharing message ids then
	// wait on each other in the same order and cannot deadlock. Sequence
	// numbers are drawn in item order first, so seq follows the batch.
	byMsg := slices.Clone(order)
	slices.SortFunc(byMsg, func(a, b int) int { return strings.Compare(items[a].Event.MessageID, items[b].Event.MessageID) })
	m := len(order)
	var (
		pos        = make([]int32, m) // rank in item order, for seq
		msgIDs     = make([]string, m)
		types      = make([]string, m)
		cids       = make([]string, m)
		anonIDs    = make([]string, m)
		names      = make([]string, m)
		props      = make([]*string, m)
		ctxs       = make([]*string, m)
		timestamps = make([]time.Time, m)
		received   = make([]time.Time, m)
		rank       = make(map[int]int32, m)
	)
	for r, i := range order {
		rank[i] = int32(r)
	}
	for k, i := range byMsg {
		e := items[i].Event
		pos[k] = rank[i]
		msgIDs[k], types[k], cids[k], anonIDs[k], names[k] = e.MessageID, e.Type, e.ContactID, e.AnonymousID, e.Name
		var err error
		if props[k], err = jsonText(e.Properties); err != nil {
			return nil, nudge.FieldErrorf(fmt.Sprintf("[%d].properties", i), "cannot be stored as JSON: %v", err)
		}
		if ctxs[k], err = jsonText(e.Context); err != nil {
			return nil, nudge.FieldErrorf(fmt.Sprintf("[%d].context", i), "cannot be stored as JSON: %v", err)
		}
		timestamps[k], received[k] = now, now
		if !e.Timestamp.IsZero() {
			timestamps[k] = utc(e.Timestamp)
		}
		if !e.ReceivedAt.IsZero() {
			received[k] = utc(e.ReceivedAt)
		}
	}

	args := []any{pos, msgIDs, types, cids, anonIDs, names, props, ctxs, timestamps, received, m, now}
	hasPatch := false
	for _, i := range order {
		hasPatch = hasPatch || items[i].Patch != nil
	}
	if !hasPatch {
		// Track only: one statement, its own transaction, one round trip.
		stored, err := retry(func() (map[string]storedEvent, error) { return insertEvents(ctx, db.pool, args) })
		if err != nil {
			return nil, wrap("event ingest", err)
		}
		for _, i := range order {
			_, ok := stored[items[i].Event.MessageID]
			res.Duplicate[i] = !ok
		}
		return res, nil
	}
	err := db.inTx(ctx, "event ingest", func(tx pgx.Tx) error {
		stored, err := insertEvents(ctx, tx, args)
		if err != nil {
			return err
		}
		var patchIDs []string
		for _, i := range order {
			_, ok := stored[items[i].Event.MessageID]
			res.Duplicate[i] = !ok
			if !res.Duplicate[i] && items[i].Patch != nil {
				patchIDs = append(patchIDs, items[i].Event.ContactID)
			}
		}
		if len(patchIDs) == 0 {
			return nil
		}
		cs, err := lockContacts(ctx, tx, patchIDs)
		if err != nil {
			return err
		}
		// An identify's traits are a contact change, which its event's
		// inbox item carries: they add no item of their own.
		changed := map[string]bool{}
		var (
			seqs          []int64
			befores, afts []*string
		)
		for _, i := range order {
			if res.Duplicate[i] || items[i].Patch == nil {
				continue
			}
			// The event names the contact; the patch's own ID is ignored.
			id := items[i].Event.ContactID
			in := stored[items[i].Event.MessageID]
			var before *nudge.Contact
			if !in.created || changed[id] {
				before = cs[id].Clone()
			}
			items[i].Patch.Apply(cs[id])
			cs[id].UpdatedAt = now
			changed[id] = true
			b, err := contactJSON(before)
			if err != nil {
				return err
			}
			a, err := contactJSON(cs[id])
			if err != nil {
				return err
			}
			seqs, befores, afts = append(seqs, in.seq), append(befores, b), append(afts, a)
		}
		if err := updateContacts(ctx, tx, cs, changed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE inbox SET contact_before = u.b::jsonb, contact_after = u.a::jsonb
			FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(seq, b, a) WHERE inbox.seq = u.seq`, seqs, befores, afts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// insertEventsQuery inserts a batch of events, creates the contacts of
// those that were not duplicates and leaves each stored event in the
// engine's inbox, in one statement. The contacts foreign key
// is deferred: it is checked at commit, when the contacts exist. Contacts are
// created in id order, so concurrent batches cannot deadlock on them.
const insertEventsQuery = `
	WITH ins AS (
		INSERT INTO events (seq, message_id, type, contact_id, anonymous_id, name, properties, context, timestamp, received_at)
		OVERRIDING SYSTEM VALUE
		SELECT s.seq[e.pos + 1], e.message_id, e.type, e.contact_id, e.anonymous_id, e.name,
			e.properties::jsonb, e.context::jsonb, e.timestamp, e.received_at
		FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])
			AS e(pos, message_id, type, contact_id, anonymous_id, name, properties, context, timestamp, received_at),
			(SELECT array_agg(nextval('events_seq_seq')) AS seq FROM generate_series(1, $11)) s
		ON CONFLICT (message_id) DO NOTHING
		RETURNING seq, message_id, contact_id
	), created AS (
		INSERT INTO contacts (id, created_at, updated_at)
		SELECT DISTINCT contact_id, $12::timestamptz, $12::timestamptz FROM ins
		WHERE NOT EXISTS (SELECT FROM contacts c WHERE c.id = ins.contact_id)
		ORDER BY 1
		ON CONFLICT (id) DO NOTHING
		RETURNING id
	), queued AS (
		INSERT INTO inbox (contact_id, event_seq, at)
		SELECT contact_id, seq, $12::timestamptz FROM ins ORDER BY seq
		RETURNING seq, event_seq
	)
	SELECT ins.message_id, q.seq, c.id IS NOT NULL
	FROM ins JOIN queued q ON q.event_seq = ins.seq LEFT JOIN created c ON c.id = ins.contact_id`

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// storedEvent is an event insertEvents stored: the seq of its inbox item,
// and whether the statement created its contact.
type storedEvent struct {
	seq     int64
	created bool
}

// insertEvents runs insertEventsQuery and returns the events stored, by
// message id.
func insertEvents(ctx context.Context, q queryer, args []any) (map[string]storedEvent, error) {
	rows, err := q.Query(ctx, insertEventsQuery, args...)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]storedEvent, args[10].(int))
	for rows.Next() {
		var (
			id string
			e  storedEvent
		)
		if err := rows.Scan(&id, &e.seq, &e.created); err != nil {
			return nil, err
		}
		stored[id] = e
	}
	return stored, rows.Err()
}

// retry runs fn again after a deadlock or serialization failure, a few times.
func retry[T any](fn func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 3 {
		v, err = fn()
		switch sqlState(err) {
		case "40P01", "40001":
			continue
		}
		break
	}
	return v, err
}

// jsonText encodes a map for a jsonb column; nil stays NULL.
func jsonText(m map[string]any) (*string, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

const eventColumns = `seq, message_id, type, contact_id, anonymous_id, name, properties, context, timestamp, received_at`

func scanEvent(row pgx.Row) (*nudge.Event, error) {
	var e nudge.Event
	if err := row.Scan(&e.Seq, &e.MessageID, &e.Type, &e.ContactID, &e.AnonymousID, &e.Name,
		&e.Properties, &e.Context, &e.Timestamp, &e.ReceivedAt); err != nil {
		return nil, err
	}
	e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
	return &e, nil
}

// EventList returns a page of a contact's events, newest first (by
// timestamp, then by seq). The cursor is the last event's position.
func (db *DB) EventList(ctx context.Context, p *nudge.EventListParams) (*nudge.EventPage, error) {
	if p == nil || p.ContactID == "" {
		return nil, nudge.FieldErrorf("contact_id", "required")
	}
	n := limit(p.Limit, 50, 1000)
	args := []any{p.ContactID}
	q := `SELECT ` + eventColumns + ` FROM events WHERE contact_id = $1`
	if p.Name != "" {
		args = append(args, p.Name)
		q += ` AND type = 'track' AND name = $2`
	}
	if p.Cursor != "" {
		s, _ := decodeCursor(p.Cursor)
		us, seq, ok := strings.Cut(s, ".")
		usv, err1 := strconv.ParseInt(us, 10, 64)
		seqv, err2 := strconv.ParseInt(seq, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("event list: %w", errBadCursor)
		}
		args = append(args, time.UnixMicro(usv).UTC(), seqv)
		q += fmt.Sprintf(` AND (timestamp, seq) < ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, n+1)
	q += fmt.Sprintf(` ORDER BY timestamp DESC, seq DESC LIMIT $%d`, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("event list", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, wrap("event list", err)
	}
	page := &nudge.EventPage{Events: es}
	if len(es) > n {
		last := es[n-1]
		page.Events = es[:n]
		page.NextCursor = encodeCursor(fmt.Sprintf("%d.%d", last.Timestamp.UnixMicro(), last.Seq))
	}
	if page.Events == nil {
		page.Events = []*nudge.Event{}
	}
	return page, nil
}

// pruneBatch bounds one delete of EventPrune, so retention on a large table
// runs as many short transactions rather than one long one.
const pruneBatch = 10000

// EventPrune deletes events received before before, in batches.
func (db *DB) EventPrune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := db.pool.Exec(ctx, `
			DELETE FROM events WHERE seq IN (
				SELECT seq FROM events WHERE received_at < $1 LIMIT $2)`, utc(before), pruneBatch)
		if err != nil {
			return total, wrap("event prune", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
