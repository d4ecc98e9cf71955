package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/nudge/nudge"
)

// Shared limits (Config.Slots): the same levels and slots as the limiter
// in memory, with each limit's next free slot and each deferred message's
// hold kept in the store, so that workers on several nodes sharing one
// PostgreSQL share every limit instead of each sending up to it.
//
// A reservation costs one round trip per message and level
// (RateSlotReserve, which holds a future slot for the message in the same
// statement), and a pass one more (RateHoldTake, for the messages that
// passed the re-check). A message deferred by one node and claimed by
// another goes on from the level its hold records. A slot is wasted, and
// the limit undershoots by it, only when the message that reserved it
// ends before it is sent: its template fails, its SMS budget is spent, or
// it is cancelled while it waits; reserving after the re-check keeps that
// rare.

// share configures l to keep its slots in slots.
func (l *limiter) share(slots nudge.RateSlotStore, log *slog.Logger) {
	if l != nil && slots != nil {
		l.slots, l.log, l.holds = slots, log, map[string]nudge.RateHold{}
	}
}

// take reads the holds of the messages of a pass (shared limits only),
// and once a minute forgets slots and holds idle for an hour.
func (l *limiter) take(ctx context.Context, msgs []*nudge.Message, now time.Time) error {
	if l == nil || l.slots == nil || len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	holds, err := l.slots.RateHoldTake(ctx, ids, now)
	if err != nil {
		return err
	}
	l.mu.Lock()
	prune := now.Sub(l.pruned) >= time.Minute
	if prune {
		l.pruned = now
	}
	for id, h := range holds {
		l.holds[id] = h
	}
	l.mu.Unlock()
	if prune {
		if err := l.slots.RateSlotPrune(ctx, now.Add(-time.Hour)); err != nil {
			l.log.WarnContext(ctx, "delivery: prune rate slots", "error", err)
		}
	}
	return nil
}

// admitShared is admit with the slots in the store. A store error defers
// the message by a second: without its slot it must not go.
func (l *limiter) admitShared(ctx context.Context, id string, levels []level, now, deadline time.Time) (ok bool, at time.Time, late bool) {
	l.mu.Lock()
	h, found := l.holds[id]
	delete(l.holds, id)
	l.mu.Unlock()
	start := 0
	if found {
		if h.At.After(now) {
			return false, h.At, false // back early: it keeps its slot (and its hold)
		}
		start = h.Level
	}
	for i := start; i < len(levels); i++ {
		lv := levels[i]
		slot, ok, err := l.slots.RateSlotReserve(ctx, lv.key, lv.interval, now, deadline, nudge.RateHold{MessageID: id, Level: i + 1})
		if err != nil {
			l.log.ErrorContext(ctx, "delivery: reserve a rate slot", "message_id", id, "limit", lv.key, "error", err)
			return false, now.Add(time.Second), false
		}
		if !ok {
			return false, time.Time{}, true
		}
		if slot.After(now) {
			return false, slot, false
		}
	}
	return true, time.Time{}, false
}
