package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

var _ nudge.RateSlotStore = (*DB)(nil)

// rateSlotReserveQuery reserves a limit's next slot, and holds it for the
// message when it is after now, in one statement: the upsert's row lock
// orders concurrent reservations of one key, so every slot goes to one
// message. A slot after the deadline updates nothing and returns no row.
const rateSlotReserveQuery = `
	WITH r AS (
		INSERT INTO rate_slots AS s (key, next_at) VALUES ($1, $2::timestamptz + $3::bigint * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET next_at = greatest(s.next_at, $2::timestamptz) + $3::bigint * interval '1 microsecond'
			WHERE greatest(s.next_at, $2::timestamptz) <= $4::timestamptz
		RETURNING s.next_at - $3::bigint * interval '1 microsecond' AS slot
	), h AS (
		INSERT INTO rate_holds (message_id, level, at) SELECT $5, $6, slot FROM r WHERE slot > $2::timestamptz
		ON CONFLICT (message_id) DO UPDATE SET level = excluded.level, at = excluded.at
	)
	SELECT slot FROM r`

// RateSlotReserve reserves the next slot of key in one round trip (see
// nudge.RateSlotStore).
func (db *DB) RateSlotReserve(ctx context.Context, key string, interval time.Duration, now, deadline time.Time, hold nudge.RateHold) (time.Time, bool, error) {
	var slot time.Time
	err := db.pool.QueryRow(ctx, rateSlotReserveQuery, key, utc(now), interval.Microseconds(), utc(deadline),
		hold.MessageID, hold.Level).Scan(&slot)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrap("rate slot reserve", err)
	}
	return slot.UTC(), true, nil
}

// rateHoldTakeQuery deletes the due holds of the messages and returns them
// with the ones not yet due (the SELECT sees the rows as they were before
// the DELETE, so the two parts are disjoint).
const rateHoldTakeQuery = `
	WITH d AS (
		DELETE FROM rate_holds WHERE message_id = ANY($1) AND at <= $2 RETURNING message_id, level, at
	)
	SELECT message_id, level, at FROM d
	UNION ALL
	SELECT message_id, level, at FROM rate_holds WHERE message_id = ANY($1) AND at > $2`

// RateHoldTake returns the holds of the messages and forgets the due ones,
// in one round trip.
func (db *DB) RateHoldTake(ctx context.Context, messageIDs []string, now time.Time) (map[string]nudge.RateHold, error) {
	out := map[string]nudge.RateHold{}
	if len(messageIDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, rateHoldTakeQuery, messageIDs, utc(now))
	if err != nil {
		return nil, wrap("rate hold take", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h nudge.RateHold
		var level int32
		if err := rows.Scan(&h.MessageID, &level, &h.At); err != nil {
			return nil, wrap("rate hold take", err)
		}
		h.Level, h.At = int(level), h.At.UTC()
		out[h.MessageID] = h
	}
	return out, wrap("rate hold take", rows.Err())
}

// RateSlotPrune forgets slots and holds older than before.
func (db *DB) RateSlotPrune(ctx context.Context, before time.Time) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM rate_slots WHERE next_at < $1`, utc(before))
	b.Queue(`DELETE FROM rate_holds WHERE at < $1`, utc(before))
	return wrap("rate slot prune", db.pool.SendBatch(ctx, b).Close())
}
