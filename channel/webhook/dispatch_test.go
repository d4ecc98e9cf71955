package webhook_test

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/webhook"
	"github.com/nudge/nudge/nudgetest"
)

// subStore is a real store (SQLite) with the given subscriptions.
func subStore(t *testing.T, subs ...*nudge.WebhookSubscription) nudge.Store {
	t.Helper()
	st := nudgetest.SQLite(t)
	for _, w := range subs {
		if w.CreatedAt.IsZero() {
			w.CreatedAt = time.Now()
		}
		if err := st.WebhookCreate(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// waitLogged waits until sub's delivery log holds n attempts and returns
// them, oldest first.
func waitLogged(t *testing.T, st nudge.Store, sub string, n int) []*nudge.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := st.WebhookDeliveryList(context.Background(), &nudge.WebhookDeliveryListParams{SubscriptionID: sub})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) >= n {
			slices.Reverse(log)
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d attempts logged", len(log), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dispatcher(t *testing.T, cfg webhook.DispatcherConfig) *webhook.Dispatcher {
	t.Helper()
	cfg.Poll = cmp.Or(cfg.Poll, 5*time.Millisecond)
	d, err := webhook.NewDispatcher(cfg)
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestDispatcherRetries(t *testing.T) {
	var calls atomic.Int32
	type call struct {
		sig, id, event string
		body           []byte
	}
	got := make(chan call, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- call{r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderEvent), b}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	st := subStore(t,
		&nudge.WebhookSubscription{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageSent}, Secret: "sub-secret"},
		&nudge.WebhookSubscription{ID: "wh_b", URL: srv.URL, Events: []string{nudge.WebhookEnrollmentConverted}, Secret: "other"})
	d := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}),
		Backoff: func(int, string) time.Duration { return time.Millisecond }})
	if !d.Wants(context.Background(), nudge.WebhookMessageSent) || d.Wants(context.Background(), nudge.WebhookSMSReplied) {
		t.Errorf("Wants does not follow the subscriptions")
	}
	d.Emit(context.Background(), webhook.Event{ID: "m1:sent", Type: nudge.WebhookMessageSent, Data: map[string]string{"id": "m1"}})
	log := waitLogged(t, st, "wh_a", 3)
	for i, e := range log {
		if e.SubscriptionID != "wh_a" || e.EventID != "m1:sent" || e.Attempt != i+1 || e.OK != (i == 2) {
			t.Errorf("attempt %d logged as %+v", i+1, e)
		}
		if i < 2 && (e.StatusCode != 503 || e.NextAttemptAt.IsZero()) {
			t.Errorf("failed attempt %d: status %d, next %v", i+1, e.StatusCode, e.NextAttemptAt)
		}
	}
	for range 3 {
		c := <-got
		if c.id != "m1:sent" || c.event != nudge.WebhookMessageSent {
			t.Errorf("headers id %q event %q", c.id, c.event)
		}
		if err := webhook.Verify([]byte("sub-secret"), c.sig, c.body, time.Now()); err != nil {
			t.Errorf("signature with the subscription's secret: %v", err)
		}
		var p struct {
			ID, Type string
			Data     map[string]string
		}
		if err := json.Unmarshal(c.body, &p); err != nil || p.ID != "m1:sent" || p.Type != nudge.WebhookMessageSent || p.Data["id"] != "m1" {
			t.Errorf("payload %s (%v)", c.body, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (the other subscription did not choose the event)", n)
	}
}

func TestDispatcherPermanentNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	st := subStore(t, &nudge.WebhookSubscription{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageFailed}, Secret: "s"})
	d := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}),
		Backoff: func(int, string) time.Duration { return time.Millisecond }})
	d.Emit(context.Background(), webhook.Event{ID: "m1:failed", Type: nudge.WebhookMessageFailed})
	log := waitLogged(t, st, "wh_a", 1)
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 || len(log) != 1 || log[0].OK || log[0].StatusCode != 400 || !log[0].NextAttemptAt.IsZero() {
		t.Errorf("%d calls, log %+v; want one refused attempt and no retry", n, log)
	}
}

func TestDispatcherBlockedAddress(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	// The default guard refuses the loopback test server: permanent.
	st := subStore(t, &nudge.WebhookSubscription{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageSent}, Secret: "s"})
	d := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{})})
	d.Emit(context.Background(), webhook.Event{ID: "m1:sent", Type: nudge.WebhookMessageSent})
	log := waitLogged(t, st, "wh_a", 1)
	if calls.Load() != 0 || log[0].OK || !log[0].NextAttemptAt.IsZero() {
		t.Errorf("log %+v; want a blocked attempt, not retried", log[0])
	}
}

func TestDispatchBackoff(t *testing.T) {
	prev := time.Duration(0)
	for a := 1; a <= 8; a++ {
		d := webhook.DefaultDispatchBackoff(a, "m1:sent")
		if d <= prev && d < 45*time.Minute || d > 75*time.Minute {
			t.Errorf("attempt %d: %s after %s", a, d, prev)
		}
		prev = d
	}
}

// A receiver that is down when the process stops gets the event after a
// restart: the retry waits in the store, not in memory.
func TestDispatcherRetryOutlivesRestart(t *testing.T) {
	var up atomic.Bool
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		got <- r.Header.Get(webhook.HeaderID)
	}))
	defer srv.Close()
	st := subStore(t, &nudge.WebhookSubscription{ID: "crm", URL: srv.URL, Events: []string{nudge.WebhookMessageDelivered}, Secret: "s"})
	clock := nudgetest.NewClock(nudgetest.Epoch)
	cfg := webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}), Clock: clock, Poll: 5 * time.Millisecond}
	d, err := webhook.NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Emit(context.Background(), webhook.Event{ID: "m1:delivered", Type: nudge.WebhookMessageDelivered, Data: map[string]string{"id": "m1"}})
	first := waitLogged(t, st, "crm", 1)[0]
	if first.OK || first.StatusCode != 502 || first.NextAttemptAt.IsZero() {
		t.Fatalf("first attempt %+v; want a 502 with a retry planned", first)
	}
	d.Close() // the process stops

	up.Store(true)
	clock.Set(first.NextAttemptAt)
	d2, err := webhook.NewDispatcher(cfg) // and starts again
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	select {
	case id := <-got:
		if id != "m1:delivered" {
			t.Errorf("delivered %q; want m1:delivered", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not delivered after the restart")
	}
	log := waitLogged(t, st, "crm", 2)
	if !log[1].OK || log[1].Attempt != 2 {
		t.Errorf("second attempt %+v; want attempt 2, delivered", log[1])
	}
}

// refusingStore is a real store whose WebhookEnqueue fails while down is
// set, as a database that is down, read-only or out of disk would.
type refusingStore struct {
	nudge.Store
	down    atomic.Bool
	refused atomic.Int32
}

func (s *refusingStore) WebhookEnqueue(ctx context.Context, ps []*nudge.WebhookPending, now time.Time) error {
	if s.down.Load() {
		s.refused.Add(1)
		return nudge.Errorf(nudge.EUNAVAILABLE, "the database is read-only")
	}
	return s.Store.WebhookEnqueue(ctx, ps, now)
}

func TestDispatcherStoreRefusesEvent(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(webhook.HeaderID)
	}))
	defer srv.Close()
	st := &refusingStore{Store: subStore(t, &nudge.WebhookSubscription{ID: "crm", URL: srv.URL, Events: []string{nudge.WebhookMessageSent, nudge.WebhookSMSReplied}, Secret: "s"})}
	st.down.Store(true)
	d := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true})})
	d.Emit(context.Background(), webhook.Event{ID: "m1:sent", Type: nudge.WebhookMessageSent, Data: map[string]string{"id": "m1"}})
	for deadline := time.Now().Add(10 * time.Second); st.refused.Load() < 3; { // Emit's write, and two passes' writes again
		if time.Now().After(deadline) {
			t.Fatalf("the store was asked %d times to take the event; want it asked again on each pass", st.refused.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case id := <-got:
		t.Fatalf("%s delivered while the store refused it", id)
	default:
	}
	st.down.Store(false) // the database is back
	select {
	case id := <-got:
		if id != "m1:sent" {
			t.Errorf("delivered %q; want m1:sent", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event the store refused was not delivered once it came back")
	}
	if log := waitLogged(t, st, "crm", 1); !log[0].OK || log[0].EventID != "m1:sent" {
		t.Errorf("delivery log %+v", log[0])
	}

	// Refused, and the store back only as the process stops: Close's last
	// write stores it, so the next start delivers it.
	st.down.Store(true)
	d2 := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}), Poll: time.Hour})
	d2.Emit(context.Background(), webhook.Event{ID: "r1:replied", Type: nudge.WebhookSMSReplied, Data: map[string]string{"id": "r1"}})
	st.down.Store(false)
	d2.Close()
	dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true})}) // the next start
	select {
	case id := <-got:
		if id != "r1:replied" {
			t.Errorf("delivered %q; want r1:replied", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event held at Close was not stored")
	}
}

func TestDispatcherUnstoredBounded(t *testing.T) {
	st := &refusingStore{Store: subStore(t, &nudge.WebhookSubscription{ID: "crm", URL: "http://127.0.0.1:1/", Events: []string{nudge.WebhookMessageSent}, Secret: "s"})}
	st.down.Store(true)
	d := dispatcher(t, webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}), Poll: time.Hour, Unstored: 2})
	for _, id := range []string{"m1", "m2", "m3"} {
		d.Emit(context.Background(), webhook.Event{ID: id, Type: nudge.WebhookMessageSent})
	}
	st.down.Store(false)
	d.Close() // stores what it holds: the two newest
	ps, err := st.WebhookClaim(context.Background(), time.Now().Add(time.Minute), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.EventID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"m2", "m3"}) {
		t.Errorf("stored %v; want the two newest, m2 and m3, with m1 given up", ids)
	}
}
