package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.EngineStore = (*DB)(nil)

// inboxClaimQuery claims the oldest unclaimed (or expired) inbox items and
// returns them with their events. SKIP LOCKED makes concurrent claimers take
// disjoint items without waiting on each other; a claimer that finds a row
// unlocked but already claimed by a transaction that committed meanwhile
// re-checks the WHERE clause on the new row version and leaves it.
const inboxClaimQuery = `
	WITH c AS MATERIALIZED (
		SELECT seq FROM inbox
		WHERE claimed_until IS NULL OR claimed_until < $1
		ORDER BY seq LIMIT $3
		FOR UPDATE SKIP LOCKED
	), u AS (
		UPDATE inbox i SET claimed_until = $2 FROM c WHERE i.seq = c.seq
		RETURNING i.seq, i.contact_id, i.event_seq, i.at, i.contact_before, i.contact_after
	)
	SELECT u.seq, u.contact_id, u.at, u.contact_before, u.contact_after,
		e.seq, e.message_id, e.type, e.contact_id, e.anonymous_id, e.name, e.properties, e.context, e.timestamp, e.received_at
	FROM u LEFT JOIN events e ON e.seq = u.event_seq
	ORDER BY u.seq`

// InboxClaim claims up to limit (default 100, at most 10000) inbox items
// that are not claimed or whose claim expired before now, oldest first,
// until now+lease. An item of an event comes with its event; one whose
// event was pruned since comes without, as if it were a contact change.
func (db *DB) InboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.InboxItem, error) {
	limit, err := claimLimit(limit, lease)
	if err != nil {
		return nil, err
	}
	now = utc(now)
	rows, err := db.pool.Query(ctx, inboxClaimQuery, now, now.Add(lease), limit)
	if err != nil {
		return nil, wrap("inbox claim", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.InboxItem, error) {
		var (
			it                          nudge.InboxItem
			seq                         *int64
			msgID, typ, cid, anon, name *string
			props, evctx                map[string]any
			ts, received                *time.Time
		)
		if err := r.Scan(&it.Seq, &it.ContactID, &it.At, &it.Before, &it.After, &seq, &msgID, &typ, &cid, &anon, &name,
			&props, &evctx, &ts, &received); err != nil {
			return nil, err
		}
		it.At = it.At.UTC()
		for _, c := range []*nudge.Contact{it.Before, it.After} {
			if c == nil {
				continue
			}
			if c.Attributes == nil {
				c.Attributes = map[string]any{}
			}
			c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		}
		if seq != nil {
			it.Event = &nudge.Event{Seq: *seq, MessageID: *msgID, Type: *typ, ContactID: *cid, AnonymousID: *anon,
				Name: *name, Properties: props, Context: evctx, Timestamp: ts.UTC(), ReceivedAt: received.UTC()}
		}
		return &it, nil
	})
	if err != nil {
		return nil, wrap("inbox claim", err)
	}
	if items == nil {
		items = []*nudge.InboxItem{}
	}
	return items, nil
}

// claimLimit checks a claim's lease and applies the default and the cap of
// its limit.
func claimLimit(limit int, lease time.Duration) (int, error) {
	if lease <= 0 {
		return 0, nudge.FieldErrorf("lease", "must be positive, not %v", lease)
	}
	return engineLimit(limit), nil
}

// engineLimit applies the default and the cap of the engine's claims and lists.
func engineLimit(n int) int { return limit(n, 100, 10000) }

// insertInbox leaves an inbox item (a contact change) for each id, with the
// contact as it was (befores; absent or nil: the change created it) and as
// the change left it (afters).
func insertInbox(ctx context.Context, tx pgx.Tx, ids []string, befores, afters map[string]*nudge.Contact, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	bs, as := make([]*string, len(ids)), make([]*string, len(ids))
	for i, id := range ids {
		var err error
		if bs[i], err = contactJSON(befores[id]); err != nil {
			return err
		}
		if as[i], err = contactJSON(afters[id]); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox (contact_id, at, contact_before, contact_after)
		SELECT id, $2, b::jsonb, a::jsonb FROM unnest($1::text[], $3::text[], $4::text[]) AS u(id, b, a)`, ids, now, bs, as)
	return err
}

// keepBefore keeps c, about to be patched, as the contact before the change
// unless befores has it already (an earlier patch); created, it keeps nil.
func keepBefore(befores map[string]*nudge.Contact, c *nudge.Contact, created bool) {
	if _, ok := befores[c.ID]; ok {
		return
	}
	if created {
		befores[c.ID] = nil
	} else {
		befores[c.ID] = c.Clone()
	}
}

// contactJSON encodes a contact for the inbox; nil is NULL.
func contactJSON(c *nudge.Contact) (*string, error) {
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}
