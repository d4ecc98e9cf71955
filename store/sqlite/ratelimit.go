package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/nudge/nudge"
)

var _ nudge.RateSlotStore = (*DB)(nil)

// RateSlotReserve reserves the next slot of key (see nudge.RateSlotStore).
// One process uses a SQLite file, so its delivery limiter may as well keep
// slots in memory; this is for a Worker given the store's slots anyway.
func (db *DB) RateSlotReserve(ctx context.Context, key string, interval time.Duration, now, deadline time.Time, hold nudge.RateHold) (time.Time, bool, error) {
	var slot int64
	ok := true
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO rate_slots AS s (key, next_at) VALUES (?1, ?2 + ?3)
			ON CONFLICT (key) DO UPDATE SET next_at = max(s.next_at, ?2) + ?3 WHERE max(s.next_at, ?2) <= ?4
			RETURNING next_at - ?3`, key, micros(now), interval.Microseconds(), micros(deadline)).Scan(&slot)
		if errors.Is(err, sql.ErrNoRows) {
			ok = false
			return nil
		}
		if err != nil || slot <= micros(now) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rate_holds (message_id, level, at) VALUES (?, ?, ?)
			ON CONFLICT (message_id) DO UPDATE SET level = excluded.level, at = excluded.at`, hold.MessageID, hold.Level, slot)
		return err
	})
	if err != nil || !ok {
		return time.Time{}, false, wrapErr("sqlite: rate slot reserve", err)
	}
	return fromMicros(slot), true, nil
}

// RateHoldTake returns the holds of the messages and forgets the due ones.
func (db *DB) RateHoldTake(ctx context.Context, messageIDs []string, now time.Time) (map[string]nudge.RateHold, error) {
	out := map[string]nudge.RateHold{}
	if len(messageIDs) == 0 {
		return out, nil
	}
	ids, err := jsonArray(messageIDs)
	if err != nil {
		return nil, err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT message_id, level, at FROM rate_holds WHERE message_id IN (SELECT value FROM json_each(?))`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		var due []string
		for rows.Next() {
			var h nudge.RateHold
			var at int64
			if err := rows.Scan(&h.MessageID, &h.Level, &at); err != nil {
				return err
			}
			h.At = fromMicros(at)
			out[h.MessageID] = h
			if at <= micros(now) {
				due = append(due, h.MessageID)
			}
		}
		if err := rows.Err(); err != nil || len(due) == 0 {
			return err
		}
		rows.Close()
		arr, err := jsonArray(due)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM rate_holds WHERE message_id IN (SELECT value FROM json_each(?))`, arr)
		return err
	})
	if err != nil {
		return nil, wrapErr("sqlite: rate hold take", err)
	}
	return out, nil
}

// RateSlotPrune forgets slots and holds older than before.
func (db *DB) RateSlotPrune(ctx context.Context, before time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM rate_slots WHERE next_at < ?`, micros(before)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM rate_holds WHERE at < ?`, micros(before))
		return err
	})
	return wrapErr("sqlite: rate slot prune", err)
}
