package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// testRateSlots: a limit's slots are handed out interval apart from now,
// one per reservation; a slot past the deadline reserves nothing; a future
// slot is held for its message until it is due and taken.
func testRateSlots(t *testing.T, open func(t *testing.T) nudge.Store) {
	s, ok := open(t).(nudge.RateSlotStore)
	if !ok {
		t.Fatal("the store does not keep rate slots (nudge.RateSlotStore)")
	}
	ctx := context.Background()
	reserve := func(id string, at, deadline time.Time) (time.Time, bool) {
		t.Helper()
		slot, ok, err := s.RateSlotReserve(ctx, "from:sms:+14155550100", time.Second, at, deadline, nudge.RateHold{MessageID: id, Level: 1})
		if err != nil {
			t.Fatal(err)
		}
		return slot, ok
	}
	take := func(at time.Time, ids ...string) map[string]nudge.RateHold {
		t.Helper()
		hs, err := s.RateHoldTake(ctx, ids, at)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	far := now.Add(time.Hour)
	if slot, ok := reserve("m1", now, far); !ok || !slot.Equal(now) {
		t.Errorf("first reservation: %v, %v; want now", slot, ok)
	}
	if slot, ok := reserve("m2", now, far); !ok || !slot.Equal(now.Add(time.Second)) {
		t.Errorf("second reservation: %v, %v; want now+1s", slot, ok)
	}
	if _, ok := reserve("m3", now, now.Add(time.Second*3/2)); ok {
		t.Errorf("a slot at now+2s was reserved with a deadline of now+1.5s")
	}
	if slot, ok := reserve("m4", now.Add(500*time.Millisecond), far); !ok || !slot.Equal(now.Add(2*time.Second)) {
		t.Errorf("after a refusal: %v, %v; want now+2s (the refusal reserved nothing)", slot, ok)
	}
	// m1 went at once: no hold. m2 holds now+1s until it is due.
	want := nudge.RateHold{MessageID: "m2", Level: 1, At: now.Add(time.Second)}
	if hs := take(now, "m1", "m2", "m3"); len(hs) != 1 || !hs["m2"].At.Equal(want.At) || hs["m2"].Level != 1 {
		t.Errorf("holds before their slot: %v; want only %v", hs, want)
	}
	if hs := take(now.Add(time.Second), "m2"); len(hs) != 1 || !hs["m2"].At.Equal(want.At) {
		t.Errorf("holds at their slot: %v; want %v", hs, want)
	}
	if hs := take(now.Add(time.Second), "m2"); len(hs) != 0 {
		t.Errorf("holds taken twice: %v; want none the second time", hs)
	}
	// Idle for an hour: forgotten, and the next slot is now again.
	later := now.Add(2 * time.Hour)
	if err := s.RateSlotPrune(ctx, later.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hs := take(later, "m4"); len(hs) != 0 {
		t.Errorf("holds after the prune: %v; want none", hs)
	}
	if slot, ok := reserve("m5", later, later.Add(time.Hour)); !ok || !slot.Equal(later) {
		t.Errorf("after the prune: %v, %v; want %v", slot, ok, later)
	}
}
