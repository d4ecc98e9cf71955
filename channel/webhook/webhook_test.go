package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/webhook"
)

const secret = "whsec_test"

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	cfg.Secret = secret
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestSendSigned(t *testing.T) {
	type got struct {
		header http.Header
		body   []byte
	}
	calls := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	now := time.Now().UTC()
	s := newSender(t, webhook.Config{AllowPrivate: true, Clock: fixedClock{now}})
	body := `{"id":"m1","details":{"url":"x"}}`
	res, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", IdempotencyKey: "e1:s1",
		Channel: nudge.ChannelWebhook, To: srv.URL + "/hook", Text: body})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Status != nudge.MessageDelivered || res.ProviderID != "e1:s1" {
		t.Errorf("result %+v, want delivered with the idempotency key as provider id", res)
	}
	c := <-calls
	if string(c.body) != body {
		t.Errorf("body %q, want %q", c.body, body)
	}
	if ct := c.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if id := c.header.Get(webhook.HeaderID); id != "e1:s1" {
		t.Errorf("%s %q, want e1:s1", webhook.HeaderID, id)
	}
	sig := c.header.Get(webhook.HeaderSignature)
	if err := webhook.Verify([]byte(secret), sig, c.body, now); err != nil {
		t.Errorf("Verify(%q): %v", sig, err)
	}
	for name, tt := range map[string]struct {
		secret string
		body   string
		now    time.Time
	}{
		"WrongSecret": {"other", body, now},
		"AlteredBody": {secret, body + " ", now},
		"Stale":       {secret, body, now.Add(webhook.SignatureTolerance + time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			if err := webhook.Verify([]byte(tt.secret), sig, []byte(tt.body), tt.now); err == nil {
				t.Errorf("Verify accepted a bad signature")
			}
		})
	}
}

func TestSignFormat(t *testing.T) {
	// Fixed vector: anyone reimplementing the check can compare.
	got := webhook.Sign([]byte("secret"), time.Unix(1700000000, 0), []byte(`{"a":1}`))
	want := "t=1700000000,v1="
	if !strings.HasPrefix(got, want) || len(got) != len(want)+64 {
		t.Fatalf("Sign = %q, want %s<64 hex>", got, want)
	}
	if err := webhook.Verify([]byte("secret"), got, []byte(`{"a":1}`), time.Unix(1700000000, 0)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestPrivateRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for _, u := range []string{srv.URL, "http://localhost" + port, "http://[::ffff:127.0.0.1]" + port} {
		t.Run(u, func(t *testing.T) {
			s := newSender(t, webhook.Config{})
			_, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", To: u, Text: "{}"})
			var se *nudge.SendError
			if !errors.As(err, &se) || !se.Permanent || se.Code != "blocked_address" {
				t.Fatalf("Send to %s: %v, want a permanent blocked_address refusal", u, err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was called %d times", n)
	}
	t.Run("AllowHosts", func(t *testing.T) {
		for _, allow := range []string{"127.0.0.1", "127.0.0.0/8", "LOCALHOST"} {
			s := newSender(t, webhook.Config{AllowHosts: []string{allow}})
			to := srv.URL
			if allow == "LOCALHOST" {
				to = "http://localhost" + port
			}
			if _, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", To: to, Text: "{}"}); err != nil {
				t.Errorf("allow %q: Send: %v", allow, err)
			}
		}
	})
}

func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	// Private addresses allowed, so the only thing stopping the redirect
	// is that redirects are not followed at all.
	s := newSender(t, webhook.Config{AllowPrivate: true})
	_, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", To: srv.URL, Text: "{}"})
	var se *nudge.SendError
	if !errors.As(err, &se) || !se.Permanent || se.Code != "307" {
		t.Fatalf("Send: %v, want a permanent 307 refusal", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the redirect was followed")
	}
}

func TestStatusClassification(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		header     map[string]string
		wantErr    bool
		permanent  bool
		retryAfter time.Duration
	}{
		{name: "200", status: 200},
		{name: "204", status: 204},
		{name: "500", status: 500, wantErr: true},
		{name: "503", status: 503, wantErr: true},
		{name: "429", status: 429, header: map[string]string{"Retry-After": "7"}, wantErr: true, retryAfter: 7 * time.Second},
		{name: "408", status: 408, wantErr: true},
		{name: "400", status: 400, wantErr: true, permanent: true},
		{name: "404", status: 404, wantErr: true, permanent: true},
		{name: "410", status: 410, wantErr: true, permanent: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "nope")
			}))
			defer srv.Close()
			s := newSender(t, webhook.Config{AllowPrivate: true})
			code, err := s.Post(context.Background(), srv.URL, secret, "id", "message.sent", []byte("{}"))
			if code != tt.status {
				t.Errorf("code %d, want %d", code, tt.status)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				return
			}
			var se *nudge.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Post: %v, want a *nudge.SendError", err)
			}
			if se.Permanent != tt.permanent || se.RetryAfter != tt.retryAfter {
				t.Errorf("got permanent %v retry after %s, want %v %s", se.Permanent, se.RetryAfter, tt.permanent, tt.retryAfter)
			}
		})
	}
}

func TestTimeoutTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSender(t, webhook.Config{AllowPrivate: true, Timeout: 100 * time.Millisecond})
	_, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", To: srv.URL, Text: "{}"})
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Permanent || se.Code != "timeout" {
		t.Fatalf("Send: %v, want a temporary timeout", err)
	}
}

func TestInvalidURL(t *testing.T) {
	s := newSender(t, webhook.Config{})
	for _, u := range []string{"", "ftp://x.io/", "/relative", "http://"} {
		_, err := s.Send(context.Background(), &nudge.Outbound{MessageID: "m1", To: u, Text: "{}"})
		var se *nudge.SendError
		if !errors.As(err, &se) || !se.Permanent {
			t.Errorf("Send to %q: %v, want a permanent refusal", u, err)
		}
	}
}

func TestBlocked(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"127.9.9.9", true}, {"::1", true},
		{"10.0.0.1", true}, {"172.16.5.4", true}, {"172.31.255.255", true}, {"192.168.0.1", true},
		{"169.254.169.254", true}, {"fe80::1", true}, {"fc00::1", true}, {"fd12:3456::1", true},
		{"0.0.0.0", true}, {"::", true}, {"224.0.0.1", true}, {"ff02::1", true}, {"255.255.255.255", true},
		{"100.64.0.1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:127.0.0.1", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"93.184.216.34", false}, {"2606:4700::1111", false},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			if got := webhook.Blocked(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Blocked(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
