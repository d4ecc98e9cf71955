package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

// fuzzServer is an API over one SQLite store for a whole fuzz run, with
// an ingest key and a Kannel key, and a contact for inbound SMS to find.
func fuzzServer(f *testing.F) (http.Handler, string) {
	f.Helper()
	store := nudgetest.SQLite(f)
	clock := nudgetest.NewClock(nudgetest.Epoch)
	s, err := api.New(api.Config{Store: store, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		KannelKey: kannelKey})
	if err != nil {
		f.Fatal(err)
	}
	k, token := nudge.NewAPIKey(nudge.RoleIngest, "fuzz", clock.Now())
	if err := store.APIKeyCreate(context.Background(), k); err != nil {
		f.Fatal(err)
	}
	if _, _, err := store.ContactPut(context.Background(), &nudge.Contact{ID: "jane", Phone: "+13125550100", Email: "jane@example.com"}, clock.Now()); err != nil {
		f.Fatal(err)
	}
	return s.Handler(), token
}

// serveFuzz sends r and fails on a server error: whatever the input, the
// answer is a 2xx or a 4xx (a panic would be recovered as a 500).
func serveFuzz(t *testing.T, h http.Handler, r *http.Request) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s: status %d: %s", r.Method, r.URL, w.Code, w.Body)
	}
}

// FuzzKannelInbound: any query Kannel's get-url could send (keywords,
// replies, odd numbers and encodings).
func FuzzKannelInbound(f *testing.F) {
	h, _ := fuzzServer(f)
	for _, seed := range [][4]string{
		{"+13125550100", "STOP", "in1", ""},
		{"+13125550100", "start", "in2", "1700000000"},
		{"13125550100", "Please stop texting me", "", ""},
		{"+33612345678", "ARRET", "in4", ""},
		{"", "HELP", "in5", ""},
		{"+1", "\xff\xfe", "in6", "x"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, from, text, id, ts string) {
		q := url.Values{"key": {kannelKey}, "from": {from}, "to": {"+18005550199"}, "text": {text}, "id": {id}, "ts": {ts}}
		r := httptest.NewRequest("GET", "/v1/webhooks/kannel/inbound?"+q.Encode(), nil)
		r.RemoteAddr = "127.0.0.1:13013"
		serveFuzz(t, h, r)
		q = url.Values{"key": {kannelKey}, "message_id": {id}, "type": {text}, "reply": {from}}
		r = httptest.NewRequest("GET", "/v1/webhooks/kannel/dlr?"+q.Encode(), nil)
		r.RemoteAddr = "127.0.0.1:13013"
		serveFuzz(t, h, r)
	})
}

// FuzzEmailEvents: any body posted to the generic email event webhook.
func FuzzEmailEvents(f *testing.F) {
	h, token := fuzzServer(f)
	for _, seed := range []string{
		`[{"type":"bounced","email":"jane@example.com","bounce_type":"hard","message_id":"m1"}]`,
		`{"events":[{"type":"complained","email":"JANE@example.com"}]}`,
		`[{"type":"opened","message_id":"m1","timestamp":"2026-03-02T10:00:00Z"}]`,
		`[{}]`, `[]`, `null`, `{"a":[[[[[]]]]]}`, "\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/webhooks/email", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		serveFuzz(t, h, r)
	})
}

// FuzzClickCode: any path under /c/ and /u/ (tracked links and one-click
// unsubscribe tokens) answers without a server error.
func FuzzClickCode(f *testing.F) {
	h, _ := fuzzServer(f)
	for _, seed := range []string{"abcdefghijkl", "", "..%2F..", "%00", "x?y=1", strings.Repeat("a", 300)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code string) {
		for _, p := range []string{"/c/", "/u/"} {
			u := &url.URL{Path: p + code}
			r := httptest.NewRequest("GET", "/", nil)
			r.URL, r.RequestURI = u, u.RequestURI()
			serveFuzz(t, h, r)
			r = httptest.NewRequest("POST", "/", strings.NewReader("List-Unsubscribe=One-Click"))
			r.URL, r.RequestURI = u, u.RequestURI()
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			serveFuzz(t, h, r)
		}
	})
}
