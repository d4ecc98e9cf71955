package sqlite

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nudge/nudge"
)

// A private store keeps the engine's inbox in memory instead of in its
// file's inbox table. The items are what the table's rows would be, in the
// same order and with the same seqs, and they change with the transactions
// that change them: an ingest, a contact change or a commit stages its
// changes to the inbox, which apply when its savepoint is released and are
// dropped when it rolls back. A claim, a look for pending items and the
// transactions that stage changes are serialized as they are on the one
// connection: a claim waits for a transaction that staged a change to end.
//
// Nothing else of the store needs the items in a table: the inbox is read
// by its claims only, and no report or page reads it. What it saves is the
// statements of every batch: the insert of an ingest's items, the claim's
// update and read (with the join to the events), and the commit's delete.
// A private store's file keeps no inbox: one kept after a simulation (whose
// inbox is empty at the end) has an empty inbox table.

// memInbox is a private store's inbox.
type memInbox struct {
	mu    sync.Mutex // held by claims, and by a transaction from its first staged change to its end
	seq   int64      // the last seq given, as the table's AUTOINCREMENT
	items []*memItem // not consumed, by seq

	// The open transaction's staged changes (mu held while staging).
	staging atomic.Bool
	txSeq   int64      // seq when the transaction staged its first change
	adds    []*memItem // items it leaves
	done    []int64    // items it consumes
	erased  []string   // contacts it erased
	pruned  int64      // events received before this (micros) were pruned; 0: none
}

// memItem is an inbox row: the stored form of its contact change and of
// its event, decoded for each claim as a row would be.
type memItem struct {
	seq           int64
	contactID     string
	at            int64 // micros
	before, after itemContact
	event         *memEvent
	claimedUntil  int64 // micros; 0: not claimed
}

// memEvent is an item's event as stored: its row of the events table.
type memEvent struct {
	seq                                   int64
	messageID, typ, contactID, anon, name string
	props, ectx                           any // JSON text or nil
	ts, recv                              int64
}

// stage starts staging the open transaction's changes, if it has not yet:
// it takes mu until the transaction ends (end).
func (m *memInbox) stage() {
	if m.staging.Load() {
		return
	}
	m.mu.Lock()
	m.staging.Store(true)
	m.txSeq = m.seq
}

// end applies (commit) or drops the open transaction's staged changes.
func (m *memInbox) end(commit bool) {
	if m == nil || !m.staging.Load() {
		return
	}
	if commit {
		m.items = append(m.items, m.adds...)
		if len(m.done) > 0 || len(m.erased) > 0 || m.pruned > 0 {
			done := make(map[int64]bool, len(m.done))
			for _, s := range m.done {
				done[s] = true
			}
			m.items = slices.DeleteFunc(m.items, func(it *memItem) bool {
				return done[it.seq] || slices.Contains(m.erased, it.contactID)
			})
			if m.pruned > 0 {
				for _, it := range m.items {
					if it.event != nil && it.event.recv < m.pruned {
						it.event = nil
					}
				}
			}
		}
	} else {
		m.seq = m.txSeq
	}
	clear(m.adds)
	m.adds, m.done, m.erased, m.pruned = m.adds[:0], m.done[:0], m.erased[:0], 0
	m.staging.Store(false)
	m.mu.Unlock()
}

// add stages an item; its seq is the next one.
func (m *memInbox) add(it *memItem) {
	m.stage()
	m.seq++
	it.seq = m.seq
	m.adds = append(m.adds, it)
}

// addEvents stages the items of the events an EventIngest stored: args
// are its insert's arguments, eventInsertColumns for each event it tried
// to store, stored the seq of each one stored by message id, and bySeq
// the contact changes of its identifies.
func (m *memInbox) addEvents(args []any, stored map[string]int64, bySeq map[string]contactChange, now int64) error {
	for off := 0; off+eventInsertColumns <= len(args); off += eventInsertColumns {
		row := args[off : off+eventInsertColumns]
		seq := stored[row[0].(string)]
		if seq == 0 {
			continue // stored before: a duplicate
		}
		e := &memEvent{seq: seq, messageID: row[0].(string), typ: row[1].(string), contactID: row[2].(string),
			anon: row[3].(string), name: row[4].(string), props: row[5], ectx: row[6], ts: row[7].(int64), recv: row[8].(int64)}
		it := &memItem{contactID: e.contactID, at: now, event: e}
		if bySeq != nil {
			if ch, ok := bySeq[strconv.FormatInt(seq, 10)]; ok {
				if err := it.setChange(ch); err != nil {
					return err
				}
			}
		}
		m.add(it)
	}
	return nil
}

// addChanges stages the items of contact changes, in order.
func (m *memInbox) addChanges(changes []contactChange, now int64) error {
	for _, ch := range changes {
		it := &memItem{contactID: ch.ID, at: now}
		if err := it.setChange(ch); err != nil {
			return err
		}
		m.add(it)
	}
	return nil
}

// setChange keeps the contacts of a change.
func (it *memItem) setChange(ch contactChange) error {
	var err error
	if it.before, err = keepContact(ch.Before); err != nil {
		return err
	}
	it.after, err = keepContact(ch.After)
	return err
}

// itemContact is a contact of an item as the table would keep it: a
// copy, when decoding the JSON of the contact would give the same (its
// strings are UTF-8, its times UTC and its attributes JSON values, as the
// store's contacts are: see normalize), else the JSON.
type itemContact struct {
	c    *nudge.Contact
	json []byte
}

func keepContact(c *nudge.Contact) (itemContact, error) {
	if c == nil {
		return itemContact{}, nil
	}
	if cc, ok := copyContact(c); ok {
		return itemContact{c: cc}, nil
	}
	b, err := json.Marshal(c)
	return itemContact{json: b}, err
}

// get returns the contact as decoding its JSON would, nil if none.
func (ic itemContact) get() (*nudge.Contact, error) {
	var c *nudge.Contact
	switch {
	case ic.c != nil:
		c, _ = copyContact(ic.c)
	case ic.json != nil:
		if err := json.Unmarshal(ic.json, &c); err != nil {
			return nil, err
		}
	}
	if c != nil && c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	return c, nil
}

// copyContact copies c and its attributes, if the copy is what decoding
// its JSON would give.
func copyContact(c *nudge.Contact) (*nudge.Contact, bool) {
	for _, s := range []string{c.ID, c.Email, c.Phone, c.Timezone, c.LifecycleStage, c.JourneyStage} {
		if !utf8.ValidString(s) {
			return nil, false
		}
	}
	for _, t := range []time.Time{c.CreatedAt, c.UpdatedAt} {
		if t.Location() != time.UTC || t.Year() < 0 || t.Year() > 9999 {
			return nil, false
		}
	}
	cc := *c
	if c.Attributes != nil {
		a, ok := copyJSON(c.Attributes)
		if !ok {
			return nil, false
		}
		cc.Attributes = a.(map[string]any)
	}
	return &cc, true
}

// copyJSON copies a value decoded from JSON (ok false for anything else).
func copyJSON(v any) (any, bool) {
	switch v := v.(type) {
	case nil, bool, float64:
		return v, true
	case string:
		return v, utf8.ValidString(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			var ok bool
			if out[i], ok = copyJSON(x); !ok {
				return nil, false
			}
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			y, ok := copyJSON(x)
			if !ok || !utf8.ValidString(k) {
				return nil, false
			}
			out[k] = y
		}
		return out, true
	}
	return nil, false
}

// consume stages the deletion of the items done (sorted, without
// repeats), as EngineCommit's delete: ECONFLICT if one is not there.
func (m *memInbox) consume(done []int64) error {
	if len(done) == 0 {
		return nil
	}
	m.stage()
	n := 0
	for _, it := range m.items {
		if _, found := slices.BinarySearch(done, it.seq); found && !slices.Contains(m.done, it.seq) {
			n++
		}
	}
	if n != len(done) {
		return nudge.Errorf(nudge.ECONFLICT, "%d of %d inbox items were consumed by another claim", len(done)-n, len(done))
	}
	m.done = append(m.done, done...)
	return nil
}

// erase stages the deletion of a contact's items; m may be nil.
func (m *memInbox) erase(contactID string) {
	if m == nil {
		return
	}
	m.stage()
	m.erased = append(m.erased, contactID)
}

// prune stages that the events received before before are gone from the
// items; m may be nil.
func (m *memInbox) prune(before time.Time) {
	if m == nil {
		return
	}
	m.stage()
	m.pruned = micros(before)
}

// claim claims up to n items not claimed or whose claim expired before
// now, oldest first, until now+lease, as InboxClaim does.
func (m *memInbox) claim(now time.Time, n int, lease time.Duration) ([]*nudge.InboxItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := micros(now)
	var (
		out  []*nudge.InboxItem
		took []*memItem
	)
	for _, it := range m.items {
		if len(out) == n {
			break
		}
		if it.claimedUntil != 0 && it.claimedUntil >= at {
			continue
		}
		item, err := it.decode()
		if err != nil {
			return nil, err
		}
		out, took = append(out, item), append(took, it)
	}
	until := micros(now.Add(lease))
	for _, it := range took {
		it.claimedUntil = until
	}
	return out, nil
}

// pending reports whether claim at now would claim an item.
func (m *memInbox) pending(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := micros(now)
	for _, it := range m.items {
		if it.claimedUntil == 0 || it.claimedUntil < at {
			return true
		}
	}
	return false
}

// decode makes the item a claim returns, as scanInboxItem does of a row.
func (it *memItem) decode() (*nudge.InboxItem, error) {
	out := &nudge.InboxItem{Seq: it.seq, ContactID: it.contactID, At: fromMicros(it.at)}
	var err error
	if out.Before, err = it.before.get(); err == nil {
		out.After, err = it.after.get()
	}
	if err != nil {
		return nil, fmt.Errorf("inbox item %d: contact: %w", it.seq, err)
	}
	ev := it.event
	if ev == nil {
		return out, nil
	}
	e := &nudge.Event{Seq: ev.seq, MessageID: ev.messageID, Type: ev.typ, ContactID: ev.contactID,
		AnonymousID: ev.anon, Name: ev.name, Timestamp: fromMicros(ev.ts), ReceivedAt: fromMicros(ev.recv)}
	if s, ok := ev.props.(string); ok {
		if err := json.Unmarshal([]byte(s), &e.Properties); err != nil {
			return nil, fmt.Errorf("event %d: properties: %w", e.Seq, err)
		}
	}
	if s, ok := ev.ectx.(string); ok {
		if err := json.Unmarshal([]byte(s), &e.Context); err != nil {
			return nil, fmt.Errorf("event %d: context: %w", e.Seq, err)
		}
	}
	out.Event = e
	return out, nil
}
