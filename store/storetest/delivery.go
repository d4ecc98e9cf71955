package storetest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// outbox is a store with journey "j", contacts c1 and c2, and enrollment
// e1 of c1, ready for messages.
func outbox(t *testing.T, open func(t *testing.T) nudge.Store) (engineStore, *nudge.Enrollment) {
	t.Helper()
	s := engineFixture(t, open)
	e := waiting("e1", "j", "c1", now.Add(24*time.Hour))
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
	return s, e
}

// queue commits messages of e, each available at its given time, at now.
func queue(t testing.TB, s engineStore, e *nudge.Enrollment, avail map[string]time.Time) {
	t.Helper()
	var ms []*nudge.Message
	for _, id := range slices.Sorted(maps.Keys(avail)) {
		m := message(id, e, "step-"+id)
		m.AvailableAt = avail[id]
		ms = append(ms, m)
	}
	mustCommit(t, s, now, &nudge.EngineCommit{Messages: ms})
}

func mustClaimMessages(t testing.TB, s engineStore, at time.Time, limit int) []*nudge.Message {
	t.Helper()
	ms, err := s.MessageClaim(ctx, at, limit, lease)
	if err != nil {
		t.Fatalf("MessageClaim: %v", err)
	}
	return ms
}

func mustUpdate(t testing.TB, s engineStore, at time.Time, us ...*nudge.MessageUpdate) []bool {
	t.Helper()
	ok, err := s.MessageUpdate(ctx, us, at)
	if err != nil {
		t.Fatalf("MessageUpdate: %v", err)
	}
	if len(ok) != len(us) {
		t.Fatalf("MessageUpdate: %d results for %d updates", len(ok), len(us))
	}
	return ok
}

func mustMessage(t testing.TB, s engineStore, id string) *nudge.Message {
	t.Helper()
	m, err := s.MessageGet(ctx, id)
	if err != nil {
		t.Fatalf("MessageGet(%s): %v", id, err)
	}
	return m
}

func mustHistory(t testing.TB, s engineStore, id string) []*nudge.MessageStatus {
	t.Helper()
	h, err := s.MessageHistory(ctx, id)
	if err != nil {
		t.Fatalf("MessageHistory(%s): %v", id, err)
	}
	return h
}

// entry is a history entry without its id, which only need
// to increase.
type entry struct {
	Status string
	Detail map[string]any
	At     time.Time
}

func historyOf(t testing.TB, s engineStore, id string) []entry {
	t.Helper()
	var es []entry
	var last int64
	for _, h := range mustHistory(t, s, id) {
		if h.MessageID != id {
			t.Errorf("history of %s has an entry of %s", id, h.MessageID)
		}
		if h.ID <= last {
			t.Errorf("history of %s: entry ids %d then %d, want increasing", id, last, h.ID)
		}
		last = h.ID
		wantUTC(t, "history", h.At)
		es = append(es, entry{h.Status, h.Detail, h.At})
	}
	return es
}

func testMessageClaim(t *testing.T, open func(t *testing.T) nudge.Store) {
	t.Run("in available order, due only, for a lease", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{
			"m1": now.Add(-time.Minute), "m2": now.Add(-time.Hour), "m3": now.Add(-time.Minute),
			"m4": now.Add(time.Minute), "m5": now,
		})
		got := mustClaimMessages(t, s, now, 3)
		if d := diff([]string{"m2", "m1", "m3"}, msgIDs(got)); d != "" {
			t.Fatalf("first claim (-want +got):\n%s", d)
		}
		for _, m := range got {
			if m.Status != nudge.MessageQueued {
				t.Errorf("claimed %s has status %q, want queued (a worker moves it to sending)", m.ID, m.Status)
			}
			wantUTC(t, "claimed", m.AvailableAt, m.CreatedAt, m.UpdatedAt)
		}
		if d := diff([]string{"m5"}, msgIDs(mustClaimMessages(t, s, now, 10))); d != "" {
			t.Errorf("second claim (-want +got):\n%s", d)
		}
		if got := mustClaimMessages(t, s, now.Add(lease/2), 10); len(got) != 0 {
			t.Errorf("claim within the lease got %v, want none", msgIDs(got))
		}
		if d := diff([]string{"m2", "m1", "m3", "m5", "m4"}, msgIDs(mustClaimMessages(t, s, now.Add(lease+time.Second), 10))); d != "" {
			t.Errorf("claim after the lease expired (-want +got):\n%s", d)
		}
	})

	t.Run("only queued messages", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now, "m2": now, "m3": now})
		mustUpdate(t, s, now, &nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending})
		mustUpdate(t, s, now, &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageFailed})
		if d := diff([]string{"m3"}, msgIDs(mustClaimMessages(t, s, now.Add(2*lease), 10))); d != "" {
			t.Errorf("claim (-want +got):\n%s", d)
		}
	})

	t.Run("bad lease", func(t *testing.T) {
		s, _ := outbox(t, open)
		for _, l := range []time.Duration{0, -time.Second} {
			_, err := s.MessageClaim(ctx, now, 10, l)
			wantCode(t, fmt.Sprintf("MessageClaim(lease %v)", l), err, nudge.EINVALID)
		}
	})

	t.Run("concurrent claims are disjoint", func(t *testing.T) {
		s, e := outbox(t, open)
		const n = 300
		avail := map[string]time.Time{}
		for i := range n {
			avail[id("m", i)] = now.Add(-time.Duration(i%17) * time.Second)
		}
		queue(t, s, e, avail)
		var (
			wg   sync.WaitGroup
			got  [2][]string
			errs [2]error
		)
		for g := range 2 {
			wg.Go(func() {
				for {
					ms, err := s.MessageClaim(ctx, now, 7, lease)
					if err != nil {
						errs[g] = err
						return
					}
					if len(ms) == 0 {
						return
					}
					got[g] = append(got[g], msgIDs(ms)...)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("MessageClaim: %v", err)
			}
		}
		seen := map[string]int{}
		for _, ids := range got {
			for _, id := range ids {
				seen[id]++
			}
		}
		if len(seen) != n {
			t.Errorf("%d distinct messages claimed, want %d", len(seen), n)
		}
		for id, k := range seen {
			if k > 1 {
				t.Errorf("%s claimed %d times", id, k)
			}
		}
	})
}

func testMessageUpdate(t *testing.T, open func(t *testing.T) nudge.Store) {
	t.Run("history is complete, ordered and monotonic", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now})
		if d := diff([]entry{{Status: nudge.MessageQueued, At: now}}, historyOf(t, s, "m1")); d != "" {
			t.Fatalf("history of a new message (-want +got):\n%s", d)
		}
		mustClaimMessages(t, s, now, 10)
		t1, t2, t3, t4 := now.Add(time.Second), now.Add(2*time.Second), now.Add(3*time.Second), now.Add(4*time.Second)
		if got := mustUpdate(t, s, t1, &nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending, Attempts: 1}); !got[0] {
			t.Fatal("queued → sending not applied")
		}
		// Sent and its detail, then delivered (the callback) before the
		// worker's late "sent": one call, as a batch of callbacks would be.
		got := mustUpdate(t, s, t2,
			&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSent, ProviderID: "SM1",
				Detail: map[string]any{"provider": "twilio"}})
		if !got[0] {
			t.Fatal("sending → sent not applied")
		}
		got = mustUpdate(t, s, t3,
			&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageDelivered, Detail: map[string]any{"code": "0"}},
			&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSent, Error: "late"})
		if d := diff([]bool{true, false}, got); d != "" {
			t.Errorf("delivered then a late sent: applied (-want +got):\n%s", d)
		}
		got = mustUpdate(t, s, t4,
			&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageDelivered},
			&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageFailed},
			&nudge.MessageUpdate{MessageID: "m1", Requeue: true, AvailableAt: t4})
		if d := diff([]bool{false, false, false}, got); d != "" {
			t.Errorf("updates of a delivered message: applied (-want +got):\n%s", d)
		}
		want := []entry{
			{Status: nudge.MessageQueued, At: now},
			{Status: nudge.MessageSending, At: t1},
			{Status: nudge.MessageSent, Detail: map[string]any{"provider": "twilio"}, At: t2},
			{Status: nudge.MessageDelivered, Detail: map[string]any{"code": "0"}, At: t3},
		}
		if d := diff(want, historyOf(t, s, "m1")); d != "" {
			t.Errorf("history (-want +got):\n%s", d)
		}
		m := mustMessage(t, s, "m1")
		if m.Status != nudge.MessageDelivered || m.ProviderID != "SM1" || m.Attempts != 1 || m.Error != "" || !m.UpdatedAt.Equal(t3) {
			t.Errorf("message status %q provider id %q attempts %d error %q updated %v; want delivered, SM1, 1, none, %v",
				m.Status, m.ProviderID, m.Attempts, m.Error, m.UpdatedAt, t3)
		}
		wantUTC(t, "MessageGet", m.AvailableAt, m.CreatedAt, m.UpdatedAt)
		if ms := mustMessages(t, s, &nudge.MessageListParams{}); len(ms) != 1 || ms[0].ProviderID != "SM1" || ms[0].Attempts != 1 {
			t.Errorf("MessageList does not show the delivery fields: %+v", ms)
		}
	})

	t.Run("fields without a status change", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now})
		later := now.Add(time.Minute)
		if got := mustUpdate(t, s, later, &nudge.MessageUpdate{MessageID: "m1", Attempts: 2, Error: "21211 invalid number"}); !got[0] {
			t.Error("a field update was not applied")
		}
		m := mustMessage(t, s, "m1")
		if m.Status != nudge.MessageQueued || m.Attempts != 2 || m.Error != "21211 invalid number" || !m.UpdatedAt.Equal(later) {
			t.Errorf("message %+v; want queued, 2 attempts, the error, updated %v", m, later)
		}
		if h := historyOf(t, s, "m1"); len(h) != 1 {
			t.Errorf("history %+v; want only queued", h)
		}
	})

	t.Run("defer a queued message", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now, "m2": now})
		mustClaimMessages(t, s, now, 10)
		mustUpdate(t, s, now, &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSending})
		slot := now.Add(3 * time.Second)
		got := mustUpdate(t, s, now,
			&nudge.MessageUpdate{MessageID: "m1", AvailableAt: slot},
			&nudge.MessageUpdate{MessageID: "m2", AvailableAt: slot})
		if d := diff([]bool{true, false}, got); d != "" {
			t.Errorf("defer of a queued and of a sending message: applied (-want +got):\n%s", d)
		}
		if m := mustMessage(t, s, "m1"); m.Status != nudge.MessageQueued || !m.AvailableAt.Equal(slot) {
			t.Errorf("deferred message %+v; want queued, available at %v", m, slot)
		}
		if h := historyOf(t, s, "m1"); len(h) != 1 {
			t.Errorf("history %+v; want only queued: a deferral is not a status", h)
		}
		if got := mustClaimMessages(t, s, slot.Add(-time.Millisecond), 10); len(got) != 0 {
			t.Errorf("claim before the deferred time got %v", msgIDs(got))
		}
		// Released from its claim: claimed at its time, not when the lease ends.
		if d := diff([]string{"m1"}, msgIDs(mustClaimMessages(t, s, slot, 10))); d != "" {
			t.Errorf("claim at the deferred time (-want +got):\n%s", d)
		}
	})

	t.Run("requeue", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now, "m2": now})
		mustClaimMessages(t, s, now, 10)
		mustUpdate(t, s, now, &nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending, Attempts: 1})
		retryAt := now.Add(10 * time.Minute)
		got := mustUpdate(t, s, now.Add(time.Second),
			&nudge.MessageUpdate{MessageID: "m1", Requeue: true, AvailableAt: retryAt, Error: "503",
				Detail: map[string]any{"reason": "provider unavailable"}},
			&nudge.MessageUpdate{MessageID: "m2", Requeue: true, AvailableAt: retryAt})
		if d := diff([]bool{true, false}, got); d != "" {
			t.Errorf("requeue of a sending and of a queued message: applied (-want +got):\n%s", d)
		}
		m := mustMessage(t, s, "m1")
		if m.Status != nudge.MessageQueued || !m.AvailableAt.Equal(retryAt) || m.Error != "503" || m.Attempts != 1 {
			t.Errorf("requeued message %+v; want queued at %v with the error and 1 attempt", m, retryAt)
		}
		want := []entry{
			{Status: nudge.MessageQueued, At: now},
			{Status: nudge.MessageSending, At: now},
			{Status: nudge.MessageQueued, Detail: map[string]any{"retry": true, "reason": "provider unavailable"}, At: now.Add(time.Second)},
		}
		if d := diff(want, historyOf(t, s, "m1")); d != "" {
			t.Errorf("history (-want +got):\n%s", d)
		}
		// The requeue released the claim, but the retry waits for its time.
		if got := mustClaimMessages(t, s, now.Add(2*time.Second), 10); len(got) != 0 {
			t.Errorf("claim before the retry time got %v", msgIDs(got))
		}
		// m2's claim expired meanwhile; it was available first.
		if d := diff([]string{"m2", "m1"}, msgIDs(mustClaimMessages(t, s, retryAt, 10))); d != "" {
			t.Errorf("claim at the retry time (-want +got):\n%s", d)
		}
	})

	t.Run("an unknown message fails the whole call", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now})
		_, err := s.MessageUpdate(ctx, []*nudge.MessageUpdate{
			{MessageID: "m1", Status: nudge.MessageSending},
			{MessageID: "nope", Status: nudge.MessageSent},
		}, now)
		wantCode(t, "MessageUpdate with an unknown message", err, nudge.ENOTFOUND)
		if m := mustMessage(t, s, "m1"); m.Status != nudge.MessageQueued {
			t.Errorf("m1 status %q after the failed call, want queued", m.Status)
		}
		if h := historyOf(t, s, "m1"); len(h) != 1 {
			t.Errorf("history %+v after the failed call; want only queued", h)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		s, e := outbox(t, open)
		queue(t, s, e, map[string]time.Time{"m1": now})
		for name, u := range map[string]*nudge.MessageUpdate{
			"nil":                     nil,
			"no message id":           {Status: nudge.MessageSent},
			"an unknown status":       {MessageID: "m1", Status: "teleported"},
			"queued without requeue":  {MessageID: "m1", Status: nudge.MessageQueued},
			"a requeue with a status": {MessageID: "m1", Requeue: true, Status: nudge.MessageSent},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := s.MessageUpdate(ctx, []*nudge.MessageUpdate{u}, now)
				wantCode(t, "MessageUpdate", err, nudge.EINVALID)
			})
		}
		if got, err := s.MessageUpdate(ctx, nil, now); err != nil || len(got) != 0 {
			t.Errorf("MessageUpdate(nothing) = %v, %v; want none, nil", got, err)
		}
	})
}

func testMessageLookup(t *testing.T, open func(t *testing.T) nudge.Store) {
	s, e := outbox(t, open)
	queue(t, s, e, map[string]time.Time{"m1": now, "m2": now})
	mustUpdate(t, s, now,
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSent, ProviderID: "SM1"})
	m, err := s.MessageByProviderID(ctx, nudge.ChannelEmail, "SM1")
	if err != nil || m.ID != "m1" {
		t.Fatalf("MessageByProviderID(email, SM1) = %v, %v; want m1", m, err)
	}
	if d := diff(mustMessage(t, s, "m1"), m); d != "" {
		t.Errorf("MessageByProviderID differs from MessageGet (-get +by provider id):\n%s", d)
	}
	for _, tt := range []struct{ channel, pid string }{
		{nudge.ChannelSMS, "SM1"}, {nudge.ChannelEmail, "SM2"},
	} {
		_, err := s.MessageByProviderID(ctx, tt.channel, tt.pid)
		wantCode(t, fmt.Sprintf("MessageByProviderID(%s, %s)", tt.channel, tt.pid), err, nudge.ENOTFOUND)
	}
	_, err = s.MessageGet(ctx, "nope")
	wantCode(t, "MessageGet(nope)", err, nudge.ENOTFOUND)
	_, err = s.MessageHistory(ctx, "nope")
	wantCode(t, "MessageHistory(nope)", err, nudge.ENOTFOUND)
}

func testMessageStuck(t *testing.T, open func(t *testing.T) nudge.Store) {
	s, e := outbox(t, open)
	queue(t, s, e, map[string]time.Time{"m1": now, "m2": now, "m3": now, "m4": now})
	mustClaimMessages(t, s, now, 10)
	mustUpdate(t, s, now,
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSent},
		&nudge.MessageUpdate{MessageID: "m3", Status: nudge.MessageSending})
	stuck := func(at time.Time) []string {
		t.Helper()
		ms, err := s.MessageStuck(ctx, at, 10)
		if err != nil {
			t.Fatalf("MessageStuck: %v", err)
		}
		return msgIDs(ms)
	}
	if got := stuck(now.Add(lease / 2)); len(got) != 0 {
		t.Errorf("stuck within the lease: %v, want none", got)
	}
	// m2 was sent (its claim cleared), m4 is queued: neither is stuck.
	if d := diff([]string{"m1", "m3"}, stuck(now.Add(lease+time.Second))); d != "" {
		t.Errorf("stuck after the lease (-want +got):\n%s", d)
	}
	later := now.Add(lease + time.Second)
	got := mustUpdate(t, s, later,
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageOutcomeUnknown, Detail: map[string]any{"reason": "worker died"}},
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageOutcomeUnknown})
	if d := diff([]bool{true, false}, got); d != "" {
		t.Errorf("marking outcome_unknown twice: applied (-want +got):\n%s", d)
	}
	if d := diff([]string{"m3"}, stuck(later)); d != "" {
		t.Errorf("stuck after m1 was marked (-want +got):\n%s", d)
	}
	// A requeued message leaves sending, and is claimable again.
	mustUpdate(t, s, later, &nudge.MessageUpdate{MessageID: "m3", Requeue: true})
	if got := stuck(later); len(got) != 0 {
		t.Errorf("stuck after m3 was requeued: %v, want none", got)
	}
	if d := diff([]string{"m4", "m3"}, msgIDs(mustClaimMessages(t, s, later, 10))); d != "" {
		t.Errorf("claim after the requeue (-want +got):\n%s", d)
	}
}

func testMessageCancel(t *testing.T, open func(t *testing.T) nudge.Store) {
	s, e := outbox(t, open)
	queue(t, s, e, map[string]time.Time{"m1": now, "m2": now, "m3": now, "m4": now.Add(time.Hour)})
	mustClaimMessages(t, s, now, 3)
	mustUpdate(t, s, now,
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSent})
	// m3 is claimed but still queued: its worker has not called the
	// provider, so the cancellation wins and the worker's move is refused.
	later := now.Add(time.Minute)
	e.State, e.WakeAt, e.EndedAt = nudge.EnrollmentConverted, time.Time{}, later
	mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}, CancelMessages: []string{"e1"}})

	for id, want := range map[string]string{
		"m1": nudge.MessageSending, "m2": nudge.MessageSent, "m3": nudge.MessageCancelled, "m4": nudge.MessageCancelled,
	} {
		if got := mustMessage(t, s, id).Status; got != want {
			t.Errorf("%s status %q after the cancellation, want %q", id, got, want)
		}
	}
	if d := diff([]entry{{Status: nudge.MessageQueued, At: now}, {Status: nudge.MessageCancelled, At: later}},
		historyOf(t, s, "m4")); d != "" {
		t.Errorf("history of a cancelled message (-want +got):\n%s", d)
	}
	if h := historyOf(t, s, "m1"); len(h) != 2 || h[1].Status != nudge.MessageSending {
		t.Errorf("history of the sending message %+v; want queued, sending", h)
	}
	got := mustUpdate(t, s, later,
		&nudge.MessageUpdate{MessageID: "m3", Status: nudge.MessageSending},
		&nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSent})
	if d := diff([]bool{false, true}, got); d != "" {
		t.Errorf("moving on a cancelled and the sending message: applied (-want +got):\n%s", d)
	}
	if got := mustClaimMessages(t, s, later.Add(2*time.Hour), 10); len(got) != 0 {
		t.Errorf("claim got %v; cancelled messages are never claimed", msgIDs(got))
	}
}

func testMessageSMSSegments(t *testing.T, open func(t *testing.T) nudge.Store) {
	s, e := outbox(t, open)
	var ms []*nudge.Message
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		m := message(id, e, "step-"+id)
		m.Channel = nudge.ChannelSMS
		ms = append(ms, m)
	}
	ms[2].Channel = nudge.ChannelEmail // not SMS: not counted
	mustCommit(t, s, now, &nudge.EngineCommit{Messages: ms})
	mustClaimMessages(t, s, now, 10)
	sending := func(id string, segments int) *nudge.MessageUpdate {
		return &nudge.MessageUpdate{MessageID: id, Status: nudge.MessageSending, Attempts: 1,
			Detail: map[string]any{"attempt": 1, "segments": segments}}
	}
	mustUpdate(t, s, now, sending("m1", 2))
	mustUpdate(t, s, now.Add(2*time.Hour), sending("m2", 3), sending("m3", 5))
	// m4 stays queued: it has not used anything.
	mustUpdate(t, s, now.Add(3*time.Hour), &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSent})

	for _, tc := range []struct {
		name  string
		ids   []string
		since time.Time
		want  map[string]int
	}{
		{"the whole day", []string{"j", "other"}, now, map[string]int{"j": 5}},
		{"since a later time", []string{"j"}, now.Add(time.Hour), map[string]int{"j": 3}},
		{"nothing since", []string{"j"}, now.Add(4 * time.Hour), map[string]int{}},
		{"no journeys", nil, now, map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.MessageSMSSegments(ctx, tc.ids, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(tc.want, got); d != "" {
				t.Errorf("MessageSMSSegments(%v, %v) (-want +got):\n%s", tc.ids, tc.since, d)
			}
		})
	}
}
