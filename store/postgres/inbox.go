package postgres

import (
	"context"
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
		RETURNING i.seq, i.contact_id, i.event_seq, i.at
	)
	SELECT u.seq, u.contact_id, u.at,
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
		if err := r.Scan(&it.Seq, &it.ContactID, &it.At, &seq, &msgID, &typ, &cid, &anon, &name,
			&props, &evctx, &ts, &received); err != nil {
			return nil, err
		}
		it.At = it.At.UTC()
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

// insertInbox leaves an inbox item (a contact change) for each id.
func insertInbox(ctx context.Context, tx pgx.Tx, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox (contact_id, at) SELECT id, $2 FROM unnest($1::text[]) AS id`, ids, now)
	return err
}
