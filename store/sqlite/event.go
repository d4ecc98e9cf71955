package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// ingestChunk is how many events one INSERT statement carries: 9 columns
// each, well under SQLite's limit of 32766 parameters.
const ingestChunk = 100

const eventInsertColumns = 9

func eventInsertQuery(n int) string {
	row := "(" + placeholders(eventInsertColumns) + ")"
	return `INSERT INTO events (message_id, type, contact_id, anonymous_id, name, properties, context, timestamp, received_at)
		VALUES ` + strings.Repeat(row+", ", n-1) + row + `
		ON CONFLICT (message_id) DO NOTHING
		RETURNING seq, message_id`
}

// inboxEventsQuery leaves the events an EventIngest stored in the inbox:
// those with seq from ?2 to ?3. The writer is alone and seq increases, so
// every event in that range is one this transaction inserted. ?4 holds the
// contact changes of the identifies by seq ({"SEQ": {"before", "after"}}),
// or is NULL.
const inboxEventsQuery = `INSERT INTO inbox (contact_id, event_seq, at, contact_before, contact_after)
	SELECT contact_id, seq, ?1, ?4 -> ('$."' || seq || '".before'), ?4 -> ('$."' || seq || '".after')
	FROM events WHERE seq BETWEEN ?2 AND ?3 ORDER BY seq`

// ensureContactsQuery creates, empty, the contacts of a JSON array of ids
// that do not exist yet, and returns their ids: one statement whatever the
// number of ids.
const ensureContactsQuery = `INSERT INTO contacts (id, created_at, updated_at)
	SELECT value, ?1, ?1 FROM json_each(?2) WHERE true
	ON CONFLICT (id) DO NOTHING RETURNING id`

// jsonOrNull encodes a map as JSON text, or NULL when it is nil.
func jsonOrNull(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// EventIngest stores items in one transaction. Duplicates, of events stored
// before or of an earlier item of the same call, are reported and skipped
// whole: neither their event nor their identify patch is applied. Contacts
// of the stored events are created if need be. Each stored event is left in
// the engine's inbox, by one statement for the whole call. An event's zero
// ReceivedAt or Timestamp is taken as now.
func (db *DB) EventIngest(ctx context.Context, items []nudge.IngestItem, now time.Time) (*nudge.IngestResult, error) {
	res := &nudge.IngestResult{Duplicate: make([]bool, len(items))}
	if len(items) == 0 {
		return res, nil
	}
	first := make(map[string]int, len(items)) // message id: first item carrying it
	uniq := make([]int, 0, len(items))        // items to try to insert
	args := make([]any, 0, len(items)*eventInsertColumns)
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
		if _, ok := first[e.MessageID]; ok {
			res.Duplicate[i] = true
			continue
		}
		first[e.MessageID] = i
		uniq = append(uniq, i)
		props, err := jsonOrNull(e.Properties)
		if err != nil {
			return nil, nudge.FieldErrorf(field+".properties", "cannot be stored as JSON: %v", err)
		}
		ectx, err := jsonOrNull(e.Context)
		if err != nil {
			return nil, nudge.FieldErrorf(field+".context", "cannot be stored as JSON: %v", err)
		}
		ts, recv := e.Timestamp, e.ReceivedAt
		if ts.IsZero() {
			ts = now
		}
		if recv.IsZero() {
			recv = now
		}
		args = append(args, e.MessageID, e.Type, e.ContactID, e.AnonymousID, e.Name, props, ectx,
			micros(ts), micros(recv))
	}

	// Statements are prepared before the transaction: the writer has one
	// connection, which the transaction holds.
	var chunks []*sql.Stmt
	for off := 0; off < len(uniq); off += ingestChunk {
		s, err := db.stmt(ctx, eventInsertQuery(min(ingestChunk, len(uniq)-off)))
		if err != nil {
			return nil, fmt.Errorf("sqlite: event ingest: %w", err)
		}
		chunks = append(chunks, s)
	}
	ensure, err := db.stmt(ctx, ensureContactsQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event ingest: %w", err)
	}
	inbox, err := db.stmt(ctx, inboxEventsQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event ingest: %w", err)
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event ingest: %w", err)
	}

	err = db.inTx(ctx, func(tx *sql.Tx) error {
		stored := make(map[string]int64, len(uniq)) // message id: seq
		var minSeq, maxSeq int64                    // of the events stored
		for c, s := range chunks {
			lo := c * ingestChunk * eventInsertColumns
			hi := min(lo+ingestChunk*eventInsertColumns, len(args))
			rows, err := tx.StmtContext(ctx, s).QueryContext(ctx, args[lo:hi]...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var (
					seq int64
					id  string
				)
				if err := rows.Scan(&seq, &id); err != nil {
					rows.Close()
					return err
				}
				stored[id] = seq
				if minSeq == 0 || seq < minSeq {
					minSeq = seq
				}
				maxSeq = max(maxSeq, seq)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		var contactIDs []string
		seen := make(map[string]bool)
		for _, i := range uniq {
			e := items[i].Event
			if stored[e.MessageID] == 0 {
				res.Duplicate[i] = true
				continue
			}
			if !seen[e.ContactID] {
				seen[e.ContactID] = true
				contactIDs = append(contactIDs, e.ContactID)
			}
		}
		created := map[string]bool{}
		if len(contactIDs) > 0 {
			ids, err := json.Marshal(contactIDs)
			if err != nil {
				return err
			}
			rows, err := tx.StmtContext(ctx, ensure).QueryContext(ctx, micros(now), string(ids))
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				created[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		// An identify's traits are a contact change, which its event's
		// inbox item carries: they add no item of their own.
		var (
			patches []*nudge.ContactPatch
			of      []int // item of each patch
		)
		for i, it := range items {
			if res.Duplicate[i] || it.Patch == nil {
				continue
			}
			p := *it.Patch
			p.ID = it.Event.ContactID
			patches = append(patches, &p)
			of = append(of, i)
		}
		results, befores, err := applyPatches(ctx, tx, ws, patches, now, func(i int, err error) error {
			return nudge.WithField(fmt.Sprintf("[%d].traits", of[i]), err)
		})
		if err != nil {
			return err
		}
		var (
			changes any // NULL without identifies
			bySeq   map[string]contactChange
		)
		if len(patches) > 0 {
			bySeq = make(map[string]contactChange, len(patches))
			for k, r := range results {
				before := befores[k]
				if created[r.Contact.ID] {
					// Made empty above for this identify: it created the contact.
					before, created[r.Contact.ID] = nil, false
				}
				seq := stored[items[of[k]].Event.MessageID]
				bySeq[strconv.FormatInt(seq, 10)] = contactChange{ID: r.Contact.ID, Before: before, After: r.Contact}
			}
		}
		if db.inbox != nil {
			return db.inbox.addEvents(args, stored, bySeq, micros(now))
		}
		if len(bySeq) > 0 {
			b, err := json.Marshal(bySeq)
			if err != nil {
				return err
			}
			changes = string(b)
		}
		if minSeq > 0 {
			if _, err := tx.StmtContext(ctx, inbox).ExecContext(ctx, micros(now), minSeq, maxSeq, changes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: event ingest: %w", err)
	}
	return res, nil
}

const eventColumns = `seq, message_id, type, contact_id, anonymous_id, name, properties, context, timestamp, received_at`

func scanEvent(s scanner) (*nudge.Event, error) {
	var (
		e           nudge.Event
		props, ectx sql.NullString
		ts, recv    int64
	)
	if err := s.Scan(&e.Seq, &e.MessageID, &e.Type, &e.ContactID, &e.AnonymousID, &e.Name,
		&props, &ectx, &ts, &recv); err != nil {
		return nil, err
	}
	if props.Valid {
		if err := json.Unmarshal([]byte(props.String), &e.Properties); err != nil {
			return nil, fmt.Errorf("event %d: properties: %w", e.Seq, err)
		}
	}
	if ectx.Valid {
		if err := json.Unmarshal([]byte(ectx.String), &e.Context); err != nil {
			return nil, fmt.Errorf("event %d: context: %w", e.Seq, err)
		}
	}
	e.Timestamp = fromMicros(ts)
	e.ReceivedAt = fromMicros(recv)
	return &e, nil
}

// An event cursor is the position of the last event of a page: its
// timestamp and seq.
func encodeEventCursor(e *nudge.Event) string {
	return base64.RawURLEncoding.EncodeToString(
		[]byte(strconv.FormatInt(micros(e.Timestamp), 10) + "." + strconv.FormatInt(e.Seq, 10)))
}

func decodeEventCursor(s string) (ts, seq int64, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, 0, false
	}
	a, c, found := strings.Cut(string(b), ".")
	if !found {
		return 0, 0, false
	}
	ts, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(c, 10, 64)
	return ts, seq, err1 == nil && err2 == nil
}

// EventList returns a page of a contact's events, newest first (by
// timestamp, then by seq). A contact that does not exist has no events.
func (db *DB) EventList(ctx context.Context, p *nudge.EventListParams) (*nudge.EventPage, error) {
	if p == nil || p.ContactID == "" {
		return nil, nudge.FieldErrorf("contact_id", "required")
	}
	q := `SELECT ` + eventColumns + ` FROM events WHERE contact_id = ?`
	args := []any{p.ContactID}
	if p.Name != "" {
		q += ` AND type = 'track' AND name = ?`
		args = append(args, p.Name)
	}
	if p.Cursor != "" {
		ts, seq, ok := decodeEventCursor(p.Cursor)
		if !ok {
			return nil, nudge.FieldErrorf("cursor", "not a cursor this list returned")
		}
		q += ` AND timestamp <= ? AND (timestamp < ? OR seq < ?)`
		args = append(args, ts, ts, seq)
	}
	n := limit(p.Limit, 50, 1000)
	q += ` ORDER BY timestamp DESC, seq DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event list: %w", err)
	}
	defer rows.Close()
	page := &nudge.EventPage{Events: []*nudge.Event{}}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: event list: %w", err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: event list: %w", err)
	}
	if len(page.Events) > n {
		page.Events = page.Events[:n]
		page.NextCursor = encodeEventCursor(page.Events[n-1])
	}
	return page, nil
}

// pruneBatch is how many events one EventPrune transaction deletes, so that
// pruning a large backlog does not hold the writer away from ingest.
const pruneBatch = 10000

// EventPrune deletes events received before before, in batches.
func (db *DB) EventPrune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN (
				SELECT seq FROM events WHERE received_at < ? LIMIT ?)`, micros(before), pruneBatch)
			if err != nil {
				return err
			}
			if n, err = r.RowsAffected(); err == nil && n < pruneBatch {
				db.inbox.prune(before) // all of them are gone now
			}
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlite: event prune: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
