package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/webhook"
)

// memStore is a DispatchStore in memory.
type memStore struct {
	subs []*nudge.WebhookSubscription
	mu   sync.Mutex
	log  []*nudge.WebhookDelivery
	done chan struct{} // receives after each logged attempt
}

func (m *memStore) WebhookList(context.Context) ([]*nudge.WebhookSubscription, error) {
	return m.subs, nil
}

func (m *memStore) WebhookDeliveryLog(_ context.Context, ds []*nudge.WebhookDelivery) error {
	m.mu.Lock()
	m.log = append(m.log, ds...)
	m.mu.Unlock()
	for range ds {
		m.done <- struct{}{}
	}
	return nil
}

func waitLogged(t *testing.T, m *memStore, n int) []*nudge.WebhookDelivery {
	t.Helper()
	for i := range n {
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d attempts logged", i, n)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*nudge.WebhookDelivery(nil), m.log...)
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
	st := &memStore{done: make(chan struct{}, 10), subs: []*nudge.WebhookSubscription{
		{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageSent}, Secret: "sub-secret"},
		{ID: "wh_b", URL: srv.URL, Events: []string{nudge.WebhookEnrollmentConverted}, Secret: "other"},
	}}
	d, err := webhook.NewDispatcher(webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}),
		Backoff: func(int, string) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	defer d.Close()
	if !d.Wants(context.Background(), nudge.WebhookMessageSent) || d.Wants(context.Background(), nudge.WebhookSMSReplied) {
		t.Errorf("Wants does not follow the subscriptions")
	}
	d.Emit(context.Background(), webhook.Event{ID: "m1:sent", Type: nudge.WebhookMessageSent, Data: map[string]string{"id": "m1"}})
	log := waitLogged(t, st, 3)
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
	st := &memStore{done: make(chan struct{}, 10), subs: []*nudge.WebhookSubscription{
		{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageFailed}, Secret: "s"},
		// The default guard refuses the loopback test server: permanent too.
	}}
	d, err := webhook.NewDispatcher(webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{AllowPrivate: true}),
		Backoff: func(int, string) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	defer d.Close()
	d.Emit(context.Background(), webhook.Event{ID: "m1:failed", Type: nudge.WebhookMessageFailed})
	log := waitLogged(t, st, 1)
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 || len(log) != 1 || log[0].OK || log[0].StatusCode != 400 || !log[0].NextAttemptAt.IsZero() {
		t.Errorf("%d calls, log %+v; want one refused attempt and no retry", n, log)
	}
}

func TestDispatcherBlockedAddress(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	st := &memStore{done: make(chan struct{}, 10), subs: []*nudge.WebhookSubscription{
		{ID: "wh_a", URL: srv.URL, Events: []string{nudge.WebhookMessageSent}, Secret: "s"},
	}}
	d, err := webhook.NewDispatcher(webhook.DispatcherConfig{Store: st, Sender: newSender(t, webhook.Config{})})
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	defer d.Close()
	d.Emit(context.Background(), webhook.Event{ID: "m1:sent", Type: nudge.WebhookMessageSent})
	log := waitLogged(t, st, 1)
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
