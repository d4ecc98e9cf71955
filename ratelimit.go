package nudge

import (
	"context"
	"time"
)

// RateHold is a rate-limit slot a deferred message holds: it passed its
// limits' first Level levels, the last of them at At. When it comes back
// (to any worker sharing the store) it goes on from level Level.
type RateHold struct {
	MessageID string
	Level     int
	At        time.Time
}

// RateSlotStore keeps the delivery rate limits' slots in the store, so
// that every worker sharing the store (several nodes on one PostgreSQL)
// shares each limit instead of applying it once per process. Times come
// from the caller (now), never from the database's clock.
type RateSlotStore interface {
	// RateSlotReserve reserves the next slot of the limit key, whose
	// slots are interval apart: the later of now and the key's next free
	// slot; the next free slot becomes that slot plus interval. When the
	// slot would be after deadline, nothing is reserved and ok is false.
	// A reserved slot after now is held for hold.MessageID at level
	// hold.Level (hold.At is ignored), in the same statement, so that the
	// message's deferral is never visible without its hold.
	RateSlotReserve(ctx context.Context, key string, interval time.Duration, now, deadline time.Time, hold RateHold) (slot time.Time, ok bool, err error)
	// RateHoldTake returns the holds of the given messages, by message
	// id, and forgets those due at or before now; holds after now stay.
	RateHoldTake(ctx context.Context, messageIDs []string, now time.Time) (map[string]RateHold, error)
	// RateSlotPrune forgets slots and holds older than before.
	RateSlotPrune(ctx context.Context, before time.Time) error
}
