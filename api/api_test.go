package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/nudgetest"
)

// env is a running API over a fresh SQLite store, with one key per role.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	store  nudge.Store
	clock  *nudgetest.Clock
	logs   *bytes.Buffer
	admin  string
	ingest string
	read   string
}

// opener opens a fresh, migrated store for a test.
type opener func(testing.TB) nudge.Store

// forEachStore runs f against SQLite, and against PostgreSQL when
// NUDGE_TEST_POSTGRES names a server (the subtest skips, saying so, when not).
func forEachStore(t *testing.T, f func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) { f(t, func(t testing.TB) nudge.Store { return nudgetest.SQLite(t) }) })
	t.Run("postgres", func(t *testing.T) { f(t, func(t testing.TB) nudge.Store { return nudgetest.Postgres(t) }) })
}

func newEnv(t *testing.T, open opener) *env {
	t.Helper()
	return newEnvWith(t, open(t))
}

func newEnvWith(t *testing.T, store nudge.Store, opts ...func(*api.Config)) *env {
	t.Helper()
	e := &env{t: t, store: store, clock: nudgetest.NewClock(nudgetest.Epoch), logs: &bytes.Buffer{}}
	contacts := &ingest.ContactNormalizer{DefaultRegion: "US"}
	n := 0
	cfg := api.Config{
		Store:    store,
		Clock:    e.clock,
		Logger:   slog.New(slog.NewTextHandler(e.logs, nil)),
		Contacts: contacts,
		Parser: &ingest.Parser{Contacts: contacts, NewID: func() string {
			n++
			return fmt.Sprintf("gen-%d", n)
		}},
		Version: "test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	e.admin = e.mustKey(nudge.RoleAdmin)
	e.ingest = e.mustKey(nudge.RoleIngest)
	e.read = e.mustKey(nudge.RoleRead)
	return e
}

func (e *env) mustKey(role string) string {
	e.t.Helper()
	k, token := nudge.NewAPIKey(role, role+" key", e.clock.Now())
	if err := e.store.APIKeyCreate(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return token
}

// response is an answer, its body decoded when it is JSON.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// errField returns error.<name> of an error body.
func (r *response) errField(name string) string {
	m, _ := r.json["error"].(map[string]any)
	s, _ := m[name].(string)
	return s
}

// do sends a request with a Bearer token (none if token is "").
func (e *env) do(method, path, token string, body any) *response {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

// post sends a body of the given type with the admin key.
func (e *env) post(path, contentType, body string) *response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	return e.send(req)
}

func (e *env) send(req *http.Request) *response {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.json); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %v\n%s", req.Method, req.URL.Path, err, b)
		}
	}
	return r
}

// must checks the status of a response.
func (e *env) must(r *response, status int) *response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

func (e *env) mustContact(id string) *nudge.Contact {
	e.t.Helper()
	r := e.must(e.do("GET", "/v1/contacts/"+id, e.read, nil), 200)
	var c nudge.Contact
	if err := json.Unmarshal(r.body, &c); err != nil {
		e.t.Fatal(err)
	}
	return &c
}

func (e *env) mustEvents(id, query string) []*nudge.Event {
	e.t.Helper()
	r := e.must(e.do("GET", "/v1/contacts/"+id+"/events"+query, e.read, nil), 200)
	var p nudge.EventPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p.Events
}

func TestIdentifyThenGetContact(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		r := e.must(e.do("POST", "/v1/identify", e.ingest, map[string]any{
			"userId":    "u1",
			"messageId": "m1",
			"traits": map[string]any{
				"email": "Jane@Example.COM", "phone": "(415) 555-0123", "timezone": "America/Los_Angeles",
				"lifecycleStage": "MQL", "plan": "pro",
			},
		}), 200)
		if diff := cmp.Diff(map[string]any{"success": true}, r.json); diff != "" {
			t.Errorf("identify answer (-want +got):\n%s", diff)
		}
		// A second identify merges: new traits are added, old ones kept.
		e.must(e.do("POST", "/v1/identify", e.ingest, map[string]any{
			"userId": "u1", "traits": map[string]any{"seats": 3, "is_customer": true},
		}), 200)

		c := e.mustContact("u1")
		want := &nudge.Contact{
			ID: "u1", Email: "Jane@example.com", Phone: "+14155550123", Timezone: "America/Los_Angeles",
			LifecycleStage: nudge.StageMQL, IsCustomer: true,
			Attributes: map[string]any{"plan": "pro", "seats": float64(3)},
			CreatedAt:  nudgetest.Epoch, UpdatedAt: nudgetest.Epoch,
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("contact (-want +got):\n%s", diff)
		}

		t.Run("bad phone", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/identify", e.ingest, map[string]any{
				"userId": "u2", "traits": map[string]any{"phone": "not a number"},
			}), 400)
			if got := r.errField("field"); got != "traits.phone" {
				t.Errorf("field = %q, want traits.phone", got)
			}
			e.must(e.do("GET", "/v1/contacts/u2", e.read, nil), 404)
		})
	})
}

func TestTrack(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("POST", "/v1/track", e.ingest, map[string]any{
			"userId": "u1", "event": "webinar.registered", "messageId": "m1",
			"properties": map[string]any{"webinar": "w-42", "price": 10.5},
			"timestamp":  "2026-03-01T10:00:00Z",
		}), 200)
		e.must(e.do("POST", "/v1/page", e.ingest, map[string]any{
			"userId": "u1", "name": "Pricing", "messageId": "m2",
		}), 200)

		events := e.mustEvents("u1", "")
		if len(events) != 2 {
			t.Fatalf("got %d events, want 2", len(events))
		}
		var names []string
		for _, ev := range events {
			names = append(names, ev.Name)
		}
		// Both were received at the same instant; the page happened later.
		if diff := cmp.Diff([]string{"page.viewed", "webinar.registered"}, names); diff != "" {
			t.Errorf("event names, newest first (-want +got):\n%s", diff)
		}
		tr := events[1]
		if tr.Properties["webinar"] != "w-42" || tr.Properties["price"] != 10.5 || !tr.Timestamp.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("track event = %+v", tr)
		}
		// A track names a contact that did not exist: it is created.
		e.mustContact("u1")

		if got := e.mustEvents("u1", "?name=webinar.registered"); len(got) != 1 {
			t.Errorf("name filter: got %d events, want 1", len(got))
		}
		e.must(e.do("GET", "/v1/contacts/nobody/events", e.read, nil), 404)
		e.must(e.do("GET", "/v1/contacts/u1/events?limit=0", e.read, nil), 400)
	})
}

func TestEventsPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		var batch []map[string]any
		for i := range 5 {
			batch = append(batch, map[string]any{
				"type": "track", "userId": "u1", "event": "e", "messageId": fmt.Sprintf("m%d", i),
				"timestamp": nudgetest.Epoch.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
			})
		}
		e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": batch}), 200)
		var got []string
		cursor := ""
		for range 10 {
			r := e.must(e.do("GET", "/v1/contacts/u1/events?limit=2&cursor="+cursor, e.read, nil), 200)
			var p nudge.EventPage
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			for _, ev := range p.Events {
				got = append(got, ev.MessageID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if diff := cmp.Diff([]string{"m4", "m3", "m2", "m1", "m0"}, got); diff != "" {
			t.Errorf("events newest first (-want +got):\n%s", diff)
		}
	})
}

func TestBatchWithBadItems(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		r := e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": []any{
			map[string]any{"type": "identify", "userId": "u1", "messageId": "b0", "traits": map[string]any{"email": "a@example.com"}},
			map[string]any{"type": "track", "event": "x", "messageId": "b1"}, // no userId
			map[string]any{"type": "track", "userId": "u1", "event": "demo.booked", "messageId": "b2"},
			map[string]any{"type": "track", "userId": "u1", "event": "order", "messageId": "b3", "properties": map[string]any{"price": "12"}},
			map[string]any{"type": "page", "userId": "u2", "messageId": "b4"},
			"not an object",
		}}), 200)

		want := map[string]any{
			"success": true, "stored": float64(3), "duplicates": float64(0),
			"errors": []any{
				map[string]any{"index": float64(1), "code": "invalid", "field": "batch[1].userId", "message": "required"},
				map[string]any{"index": float64(3), "code": "invalid", "field": "batch[3].properties.price", "message": "expected number, got string"},
				map[string]any{"index": float64(5), "code": "invalid", "field": "batch[5]", "message": "expected object, got string"},
			},
		}
		if diff := cmp.Diff(want, r.json); diff != "" {
			t.Errorf("batch answer (-want +got):\n%s", diff)
		}
		if got := e.mustEvents("u1", ""); len(got) != 2 {
			t.Errorf("u1 has %d events, want 2 (identify and demo.booked)", len(got))
		}
		if c := e.mustContact("u1"); c.Email != "a@example.com" {
			t.Errorf("u1 email = %q", c.Email)
		}
		e.mustContact("u2")

		t.Run("all bad", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": []any{
				map[string]any{"type": "track", "userId": "u1", "event": "order", "properties": map[string]any{"price": "12"}},
			}}), 400)
			if r.json["success"] != false || r.errField("field") != "batch[0].properties.price" {
				t.Errorf("answer: %s", r.body)
			}
		})
		t.Run("not a batch", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/batch", e.ingest, `{"batch": {}}`), 400)
			if r.errField("field") != "batch" {
				t.Errorf("answer: %s", r.body)
			}
		})
	})
}

func TestDuplicateMessageID(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		call := map[string]any{"userId": "u1", "event": "demo.booked", "messageId": "same"}
		r := e.must(e.do("POST", "/v1/track", e.ingest, call), 200)
		if r.json["duplicate"] != nil {
			t.Errorf("first call marked duplicate: %s", r.body)
		}
		e.clock.Advance(time.Hour)
		r = e.must(e.do("POST", "/v1/track", e.ingest, call), 200)
		if r.json["success"] != true || r.json["duplicate"] != true {
			t.Errorf("retry answer: %s", r.body)
		}
		// In a batch too, and within one batch.
		r = e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": []any{
			map[string]any{"type": "track", "userId": "u1", "event": "demo.booked", "messageId": "same"},
			map[string]any{"type": "track", "userId": "u1", "event": "demo.booked", "messageId": "new"},
			map[string]any{"type": "track", "userId": "u1", "event": "demo.booked", "messageId": "new"},
		}}), 200)
		if r.json["stored"] != float64(1) || r.json["duplicates"] != float64(2) {
			t.Errorf("batch answer: %s", r.body)
		}
		if got := e.mustEvents("u1", ""); len(got) != 2 {
			t.Errorf("got %d events, want 2 (same, new)", len(got))
		}
	})
}

func TestMalformedJSON(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		for _, path := range []string{"/v1/identify", "/v1/track", "/v1/batch"} {
			for _, body := range []string{`{"userId": "u1",`, ``, `[1,2]`, `{"userId":"u1"} trailing`} {
				t.Run(path+" "+body, func(t *testing.T) {
					r := e.must(e.do("POST", path, e.ingest, body), 400)
					if r.errField("code") != "invalid" || r.errField("message") == "" {
						t.Errorf("answer: %s", r.body)
					}
				})
			}
		}
		t.Run("contact", func(t *testing.T) {
			r := e.must(e.do("PUT", "/v1/contacts/u1", e.admin, `{"email": `), 400)
			if !strings.Contains(r.errField("message"), "malformed JSON") {
				t.Errorf("answer: %s", r.body)
			}
		})
	})
}

func TestWrongType(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		for _, tc := range []struct {
			path, body, field string
		}{
			{"/v1/track", `{"userId":"u1","event":"order","properties":{"price":"12"}}`, "properties.price"},
			{"/v1/track", `{"userId":"u1","event":42}`, "event"},
			{"/v1/track", `{"userId":"u1","event":"x","properties":[1]}`, "properties"},
			{"/v1/identify", `{"userId":"u1","traits":{"email":5}}`, "traits.email"},
			{"/v1/identify", `{"userId":{"a":1}}`, "userId"},
			{"/v1/batch", `{"batch":[{},{},{},{"type":"track","userId":"u1","event":"o","properties":{"price":"9"}}]}`, "batch[0].type"},
		} {
			t.Run(tc.field, func(t *testing.T) {
				r := e.must(e.do("POST", tc.path, e.ingest, tc.body), 400)
				if got := r.errField("field"); got != tc.field {
					t.Errorf("field = %q, want %q; body: %s", got, tc.field, r.body)
				}
			})
		}
		t.Run("batch[3]", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/batch", e.ingest,
				`{"batch":[{},{},{},{"type":"track","userId":"u1","event":"o","properties":{"price":"9"}}]}`), 400)
			errs, _ := r.json["errors"].([]any)
			if len(errs) != 4 || errs[3].(map[string]any)["field"] != "batch[3].properties.price" ||
				errs[3].(map[string]any)["message"] != "expected number, got string" {
				t.Errorf("errors: %s", r.body)
			}
		})
	})
}

func TestOversize(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		big := strings.Repeat("x", ingest.MaxCallBytes)
		r := e.must(e.do("POST", "/v1/track", e.ingest, map[string]any{"userId": "u1", "event": "e", "properties": map[string]any{"blob": big}}), 413)
		want := map[string]any{"error": map[string]any{"code": "too_large", "message": "request body is over 32768 bytes, the limit for /v1/track"}}
		if diff := cmp.Diff(want, r.json); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}

		t.Run("chunked", func(t *testing.T) {
			// No Content-Length: the limit holds while reading.
			body := `{"userId":"u1","event":"e","properties":{"blob":"` + big + `"}}`
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/identify", io.MultiReader(strings.NewReader(body)))
			req.Header.Set("Authorization", "Bearer "+e.ingest)
			req.ContentLength = -1
			r := e.must(e.send(req), 413)
			if r.errField("message") != "request body is over 32768 bytes, the limit for /v1/identify" {
				t.Errorf("answer: %s", r.body)
			}
		})

		t.Run("gzip", func(t *testing.T) {
			gz := func(s string) *bytes.Buffer {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				io.WriteString(zw, s)
				zw.Close()
				return &b
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/track", gz(`{"userId":"gz","event":"e"}`))
			req.Header.Set("Content-Encoding", "gzip")
			req.SetBasicAuth(e.ingest, "")
			e.must(e.send(req), 200)
			e.mustContact("gz")

			// Small compressed, big inflated.
			req, _ = http.NewRequest("POST", e.srv.URL+"/v1/track", gz(`{"userId":"gz","event":"e","properties":{"blob":"`+big+`"}}`))
			req.Header.Set("Content-Encoding", "gzip")
			req.SetBasicAuth(e.ingest, "")
			e.must(e.send(req), 413)
		})

		t.Run("batch", func(t *testing.T) {
			item := map[string]any{"type": "track", "userId": "u1", "event": "e", "properties": map[string]any{"blob": strings.Repeat("y", 20<<10)}}
			var batch []any
			for range 30 {
				batch = append(batch, item)
			}
			r := e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": batch}), 413)
			if r.errField("code") != "too_large" || r.errField("message") != "request body is over 512000 bytes, the limit for /v1/batch" {
				t.Errorf("answer: %s", r.body)
			}
		})
		t.Run("batch item", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/batch", e.ingest, map[string]any{"batch": []any{
				map[string]any{"type": "track", "userId": "u1", "event": "ok"},
				map[string]any{"type": "track", "userId": "u1", "event": "e", "properties": map[string]any{"blob": big}},
			}}), 200)
			errs, _ := r.json["errors"].([]any)
			if r.json["stored"] != float64(1) || len(errs) != 1 || errs[0].(map[string]any)["code"] != "too_large" {
				t.Errorf("answer: %s", r.body)
			}
		})
	})
}

func TestAuth(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		track := `{"userId":"u1","event":"e"}`
		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			status                    int
		}{
			{"no key", "POST", "/v1/track", "", track, 401},
			{"no key read", "GET", "/v1/contacts", "", nil, 401},
			{"no key unknown route", "GET", "/v1/nothing", "", nil, 401},
			{"garbage key", "POST", "/v1/track", "hello", track, 401},
			{"unknown key id", "POST", "/v1/track", "nk_000000000000_0123456789abcdef0123456789abcdef", track, 401},
			{"wrong secret", "POST", "/v1/track", e.ingest[:len(e.ingest)-4] + "0000", track, 401},
			{"ingest key reads contacts", "GET", "/v1/contacts", e.ingest, nil, 403},
			{"ingest key reads a contact", "GET", "/v1/contacts/u1", e.ingest, nil, 403},
			{"read key writes", "PUT", "/v1/contacts/u1", e.read, `{}`, 403},
			{"read key ingests", "POST", "/v1/track", e.read, track, 403},
			{"read key makes keys", "POST", "/v1/apikeys", e.read, `{"role":"admin"}`, 403},
			{"read key records consent", "POST", "/v1/contacts/u1/consent", e.read, `{}`, 403},
			{"ingest key ingests", "POST", "/v1/track", e.ingest, track, 200},
			{"admin key ingests", "POST", "/v1/track", e.admin, track, 200},
			{"read key reads", "GET", "/v1/contacts", e.read, nil, 200},
			{"unknown route", "GET", "/v1/nothing", e.read, nil, 404},
			{"wrong method", "DELETE", "/v1/track", e.admin, nil, 405},
			{"ops need no key", "GET", "/healthz", "", nil, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(e.do(tc.method, tc.path, tc.token, tc.body), tc.status)
				if r.status >= 400 && r.errField("code") == "" {
					t.Errorf("error body: %s", r.body)
				}
				if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options = %q", got)
				}
			})
		}

		t.Run("basic auth write key", func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/track", strings.NewReader(`{"userId":"u9","event":"e"}`))
			req.SetBasicAuth(e.ingest, "")
			e.must(e.send(req), 200)
			e.mustContact("u9")
		})

		t.Run("revoked", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/apikeys", e.admin, `{"role":"ingest","name":"segment"}`), 201)
			token, id := r.json["token"].(string), r.json["id"].(string)
			if !strings.HasPrefix(token, "nk_"+id+"_") || r.json["role"] != "ingest" || r.json["name"] != "segment" {
				t.Fatalf("created: %s", r.body)
			}
			e.must(e.do("POST", "/v1/track", token, track), 200) // now cached
			e.must(e.do("DELETE", "/v1/apikeys/"+id, e.admin, nil), 204)
			e.must(e.do("POST", "/v1/track", token, track), 401)
			e.must(e.do("DELETE", "/v1/apikeys/nope", e.admin, nil), 404)

			r = e.must(e.do("GET", "/v1/apikeys", e.admin, nil), 200)
			keys := r.json["api_keys"].([]any)
			if len(keys) != 4 {
				t.Errorf("got %d keys, want 4: %s", len(keys), r.body)
			}
			if strings.Contains(string(r.body), "hash") || strings.Contains(string(r.body), token[len(token)-10:]) {
				t.Errorf("key list shows secrets: %s", r.body)
			}
			e.must(e.do("POST", "/v1/apikeys", e.admin, `{"role":"root"}`), 400)
		})

		t.Run("revoked elsewhere stops within the TTL", func(t *testing.T) {
			k, token := nudge.NewAPIKey(nudge.RoleIngest, "cli", e.clock.Now())
			if err := e.store.APIKeyCreate(context.Background(), k); err != nil {
				t.Fatal(err)
			}
			e.must(e.do("POST", "/v1/track", token, track), 200)
			if err := e.store.APIKeyRevoke(context.Background(), k.ID, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			e.must(e.do("POST", "/v1/track", token, track), 200) // still cached
			e.clock.Advance(31 * time.Second)
			e.must(e.do("POST", "/v1/track", token, track), 401)
		})

		t.Run("no secret in the URL", func(t *testing.T) {
			e.must(e.do("GET", "/v1/contacts?api_key="+e.read, "", nil), 401)
		})
	})
}

func TestContactPutPatchDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		r := e.must(e.do("PUT", "/v1/contacts/c1", e.admin, map[string]any{
			"email": "c1@example.com", "phone": "+14155550100", "lifecycle_stage": "lead",
			"attributes": map[string]any{"plan": "free", "owner": "sam"},
		}), 201)
		if r.json["phone"] != "+14155550100" || r.json["id"] != "c1" {
			t.Errorf("PUT answer: %s", r.body)
		}

		// PUT replaces: fields not given are cleared.
		e.clock.Advance(time.Minute)
		e.must(e.do("PUT", "/v1/contacts/c1", e.admin, map[string]any{
			"email": "c1@example.com", "attributes": map[string]any{"plan": "pro"},
		}), 200)
		c := e.mustContact("c1")
		want := &nudge.Contact{ID: "c1", Email: "c1@example.com", Attributes: map[string]any{"plan": "pro"},
			CreatedAt: nudgetest.Epoch, UpdatedAt: nudgetest.Epoch.Add(time.Minute)}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("after PUT (-want +got):\n%s", diff)
		}

		// PATCH merges; null deletes an attribute; a GET's output can be sent back.
		e.must(e.do("PATCH", "/v1/contacts/c1", e.admin, map[string]any{
			"timezone": "Europe/Paris", "is_customer": true,
			"attributes": map[string]any{"plan": nil, "seats": 5},
		}), 200)
		c = e.mustContact("c1")
		want = &nudge.Contact{ID: "c1", Email: "c1@example.com", Timezone: "Europe/Paris", IsCustomer: true,
			Attributes: map[string]any{"seats": float64(5)}, CreatedAt: nudgetest.Epoch, UpdatedAt: nudgetest.Epoch.Add(time.Minute)}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("after PATCH (-want +got):\n%s", diff)
		}
		round := e.must(e.do("GET", "/v1/contacts/c1", e.read, nil), 200)
		e.must(e.do("PUT", "/v1/contacts/c1", e.admin, round.body), 200)
		if diff := cmp.Diff(want, e.mustContact("c1")); diff != "" {
			t.Errorf("after GET then PUT (-want +got):\n%s", diff)
		}

		for _, tc := range []struct {
			name, method, body, field string
		}{
			{"bad phone", "PATCH", `{"phone":"12"}`, "phone"},
			{"bad zone", "PUT", `{"timezone":"Mars/Olympus"}`, "timezone"},
			{"bad email", "PATCH", `{"email":"nope"}`, "email"},
			{"id mismatch", "PUT", `{"id":"c2"}`, "id"},
			{"attributes not an object", "PATCH", `{"attributes":[1]}`, "attributes"},
			{"is_customer wrong type", "PATCH", `{"is_customer":"maybe"}`, "is_customer"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(e.do(tc.method, "/v1/contacts/c1", e.admin, tc.body), 400)
				if got := r.errField("field"); got != tc.field {
					t.Errorf("field = %q, want %q: %s", got, tc.field, r.body)
				}
			})
		}

		t.Run("unknown contact", func(t *testing.T) {
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				r := e.must(e.do(m, "/v1/contacts/nobody", e.admin, `{"email":"x@example.com"}`), 404)
				if r.errField("code") != "not_found" {
					t.Errorf("%s: %s", m, r.body)
				}
			}
			e.must(e.do("GET", "/v1/contacts/nobody/consent", e.read, nil), 404)
		})

		e.must(e.do("DELETE", "/v1/contacts/c1", e.admin, nil), 204)
		e.must(e.do("GET", "/v1/contacts/c1", e.read, nil), 404)

		t.Run("escaped id", func(t *testing.T) {
			r := e.must(e.do("PUT", "/v1/contacts/crm%2F42", e.admin, `{"email":"x@example.com"}`), 201)
			if r.json["id"] != "crm/42" {
				t.Errorf("answer: %s", r.body)
			}
			e.mustContact("crm%2F42")
		})
	})
}

func TestContactList(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		for i, c := range []map[string]any{
			{"email": "a@example.com", "lifecycle_stage": "lead", "attributes": map[string]any{"plan": "pro"}},
			{"email": "b@example.com", "lifecycle_stage": "customer", "is_customer": true, "attributes": map[string]any{"plan": "free"}},
			{"email": "c@example.com", "lifecycle_stage": "lead", "journey_stage": "trial", "attributes": map[string]any{"plan": "pro", "seats": 3}},
			{"phone": "+14155550199", "lifecycle_stage": "lead"},
			{"email": "e@example.com"},
		} {
			e.clock.Advance(time.Minute)
			e.must(e.do("PUT", fmt.Sprintf("/v1/contacts/c%d", i+1), e.admin, c), 201)
		}
		ids := func(query string) []string {
			t.Helper()
			r := e.must(e.do("GET", "/v1/contacts"+query, e.read, nil), 200)
			var p nudge.ContactPage
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			out := []string{}
			for _, c := range p.Contacts {
				out = append(out, c.ID)
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{"c1", "c2", "c3", "c4", "c5"}},
			{"?lifecycle_stage=lead", []string{"c1", "c3", "c4"}},
			{"?is_customer=true", []string{"c2"}},
			{"?is_customer=false&lifecycle_stage=lead", []string{"c1", "c3", "c4"}},
			{"?email=b@example.com", []string{"c2"}},
			{"?phone=%2B14155550199", []string{"c4"}},
			{"?phone=(415)%20555-0199", []string{"c4"}},
			{"?email=b@EXAMPLE.com", []string{"c2"}},
			{"?journey_stage=trial", []string{"c3"}},
			{"?attributes.plan=pro", []string{"c1", "c3"}},
			{"?attributes.plan=pro&attributes.seats=3", []string{"c3"}},
			{"?updated_after=" + nudgetest.Epoch.Add(3*time.Minute).Format(time.RFC3339), []string{"c4", "c5"}},
		} {
			t.Run(tc.query, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, ids(tc.query)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}

		t.Run("cursor", func(t *testing.T) {
			var got []string
			cursor := ""
			for range 10 {
				r := e.must(e.do("GET", "/v1/contacts?limit=2&cursor="+cursor, e.read, nil), 200)
				var p nudge.ContactPage
				if err := json.Unmarshal(r.body, &p); err != nil {
					t.Fatal(err)
				}
				if len(p.Contacts) > 2 {
					t.Fatalf("page of %d", len(p.Contacts))
				}
				for _, c := range p.Contacts {
					got = append(got, c.ID)
				}
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			if diff := cmp.Diff([]string{"c1", "c2", "c3", "c4", "c5"}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		for _, tc := range []struct{ query, field string }{
			{"?limit=0", "limit"},
			{"?limit=abc", "limit"},
			{"?limit=1001", "limit"},
			{"?is_customer=maybe", "is_customer"},
			{"?updated_after=yesterday", "updated_after"},
			{"?lifecycle=lead", "lifecycle"},
			{"?attributes.=x", "attributes."},
			{"?phone=12", "phone"},
			{"?email=nope", "email"},
			{"?lifecycle_stage=a&lifecycle_stage=b", "lifecycle_stage"},
		} {
			t.Run("bad "+tc.query, func(t *testing.T) {
				r := e.must(e.do("GET", "/v1/contacts"+tc.query, e.read, nil), 400)
				if got := r.errField("field"); got != tc.field {
					t.Errorf("field = %q, want %q: %s", got, tc.field, r.body)
				}
			})
		}
	})
}

func TestConsent(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("PUT", "/v1/contacts/c1", e.admin, `{"email":"c1@example.com","phone":"+14155550100"}`), 201)

		r := e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, map[string]any{
			"channel": "sms", "status": "opted_in", "source": "form",
			"evidence":    map[string]any{"text": "Yes, text me", "form_url": "https://example.com/f", "ip": "203.0.113.9"},
			"occurred_at": "2026-03-01T12:00:00Z",
		}), 201)
		if r.json["purpose"] != "marketing" || r.json["status"] != "opted_in" || r.json["contact_id"] != "c1" ||
			r.json["occurred_at"] != "2026-03-01T12:00:00Z" {
			t.Errorf("entry: %s", r.body)
		}

		r = e.must(e.do("GET", "/v1/contacts/c1/consent", e.read, nil), 200)
		var got struct {
			ContactID string                `json:"contact_id"`
			Consent   []*nudge.ConsentState `json:"consent"`
			Ledger    []*nudge.ConsentEntry `json:"ledger"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, s := range got.Consent {
			states = append(states, s.Channel+"/"+s.Purpose+"="+s.Status)
		}
		wantStates := []string{"email/marketing=unknown", "email/transactional=unknown", "sms/marketing=opted_in", "sms/transactional=unknown"}
		if diff := cmp.Diff(wantStates, states); diff != "" {
			t.Errorf("states (-want +got):\n%s", diff)
		}
		if len(got.Ledger) != 1 || got.Ledger[0].Evidence.Text != "Yes, text me" || got.Ledger[0].Source != "form" {
			t.Errorf("ledger: %s", r.body)
		}

		t.Run("keyword opt-out beats an API opt-in", func(t *testing.T) {
			e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin,
				`{"channel":"sms","status":"opted_out","source":"keyword","evidence":{"keyword":"STOP"}}`), 201)
			r := e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, `{"channel":"sms","status":"opted_in"}`), 409)
			if r.errField("code") != "conflict" || r.errField("field") != "status" {
				t.Errorf("answer: %s", r.body)
			}
			r = e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, `{"channel":"sms","status":"opted_in","source":"import"}`), 409)
			// The person can opt back in.
			e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, `{"channel":"sms","status":"opted_in","source":"keyword","evidence":{"keyword":"START"}}`), 201)
		})

		t.Run("array", func(t *testing.T) {
			r := e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, `[
				{"channel":"email","status":"opted_in"},
				{"channel":"fax","status":"opted_in"},
				{"channel":"email","purpose":"transactional","status":"opted_in","source":"admin"}
			]`), 201)
			entries, _ := r.json["entries"].([]any)
			errs, _ := r.json["errors"].([]any)
			if len(entries) != 2 || len(errs) != 1 || errs[0].(map[string]any)["field"] != "[1].channel" {
				t.Errorf("answer: %s", r.body)
			}
			r = e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, `[{"channel":"fax","status":"opted_in"}]`), 400)
			if r.errField("field") != "[0].channel" {
				t.Errorf("answer: %s", r.body)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			for _, tc := range []struct{ body, field string }{
				{`{"channel":"sms","status":"maybe"}`, "status"},
				{`{"channel":"sms","status":"opted_in","source":"guess"}`, "source"},
				{`{"channel":"sms","status":"opted_in","occurred_at":"yesterday"}`, "occurred_at"},
				{`{"channel":"sms","status":"opted_in","colour":"red"}`, "colour"},
				{`{"channel":5}`, "channel"},
			} {
				r := e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin, tc.body), 400)
				if got := r.errField("field"); got != tc.field {
					t.Errorf("%s: field = %q, want %q", tc.body, got, tc.field)
				}
			}
			e.must(e.do("POST", "/v1/contacts/nobody/consent", e.admin, `{"channel":"sms","status":"opted_in"}`), 404)
		})

		t.Run("ledger CSV", func(t *testing.T) {
			e.must(e.do("PUT", "/v1/contacts/c2", e.admin, `{"email":"c2@example.com"}`), 201)
			e.must(e.do("POST", "/v1/contacts/c2/consent", e.admin,
				`{"channel":"email","status":"opted_out","source":"form","evidence":{"text":"=HYPERLINK(\"http://evil\")"}}`), 201)

			r := e.must(e.do("GET", "/v1/consent/ledger.csv", e.read, nil), 200)
			if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1+6 {
				t.Fatalf("got %d rows, want a header and 6 entries:\n%s", len(rows), r.body)
			}
			if diff := cmp.Diff([]string{"id", "contact_id", "address_hash", "channel", "purpose", "status", "source",
				"evidence_text", "evidence_form_url", "evidence_ip", "evidence_keyword", "occurred_at", "recorded_at"}, rows[0]); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			first, last := rows[1], rows[len(rows)-1]
			if first[1] != "c1" || first[3] != "sms" || first[5] != "opted_in" || first[7] != "Yes, text me" ||
				first[9] != "203.0.113.9" || first[11] != "2026-03-01T12:00:00Z" || first[12] != "2026-03-02T09:00:00Z" {
				t.Errorf("first row: %q", first)
			}
			if last[1] != "c2" || last[7] != `'=HYPERLINK("http://evil")` {
				t.Errorf("last row: %q", last)
			}

			r = e.must(e.do("GET", "/v1/consent/ledger.csv?contact_id=c2", e.read, nil), 200)
			rows, _ = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if len(rows) != 2 || rows[1][1] != "c2" {
				t.Errorf("c2's ledger:\n%s", r.body)
			}
			e.must(e.do("GET", "/v1/consent/ledger.csv?contact_id=nobody", e.read, nil), 404)
			e.must(e.do("GET", "/v1/consent/ledger.csv?contact=c2", e.read, nil), 400)
		})
	})
}

func TestLedgerCSVPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("PUT", "/v1/contacts/c1", e.admin, `{"email":"c1@example.com"}`), 201)
		var ps []*nudge.ConsentRecordParams
		for i := range 2500 {
			status := nudge.ConsentOptedIn
			if i%2 == 1 {
				status = nudge.ConsentOptedOut
			}
			ps = append(ps, &nudge.ConsentRecordParams{ContactID: "c1", Channel: "email", Purpose: "marketing", Status: status, Source: "admin"})
		}
		if _, err := e.store.ConsentRecord(context.Background(), ps, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r := e.must(e.do("GET", "/v1/consent/ledger.csv", e.read, nil), 200)
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2501 || rows[2500][0] != "2500" {
			t.Errorf("got %d rows, last %q", len(rows), rows[len(rows)-1])
		}
		r = e.must(e.do("GET", "/v1/contacts/c1/consent", e.read, nil), 200)
		if n := len(r.json["ledger"].([]any)); n != 2500 {
			t.Errorf("ledger has %d entries, want 2500", n)
		}
	})
}

func TestEraseKeepsOptOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("PUT", "/v1/contacts/c1", e.admin, `{"email":"jane@example.com","phone":"+14155550100","attributes":{"name":"Jane"}}`), 201)
		e.must(e.do("POST", "/v1/track", e.ingest, `{"userId":"c1","event":"e"}`), 200)
		e.must(e.do("POST", "/v1/contacts/c1/consent", e.admin,
			`{"channel":"sms","status":"opted_out","source":"keyword","evidence":{"keyword":"STOP","ip":"203.0.113.9"}}`), 201)

		e.must(e.do("DELETE", "/v1/contacts/c1", e.admin, nil), 204)
		e.must(e.do("GET", "/v1/contacts/c1", e.read, nil), 404)
		e.must(e.do("GET", "/v1/contacts/c1/events", e.read, nil), 404)

		// The ledger keeps the entry, without the contact id or the IP.
		r := e.must(e.do("GET", "/v1/consent/ledger.csv", e.read, nil), 200)
		rows, _ := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if len(rows) != 2 || rows[1][1] != "" || rows[1][9] != "" || rows[1][5] != "opted_out" {
			t.Errorf("ledger after erase:\n%s", r.body)
		}
		if strings.Contains(string(r.body), "+14155550100") || strings.Contains(string(r.body), "jane@") {
			t.Errorf("ledger shows an erased address:\n%s", r.body)
		}

		// The same number comes back under a new id, from a CRM import say.
		e.must(e.do("PUT", "/v1/contacts/c9", e.admin, `{"phone":"(415) 555-0100"}`), 201)
		r = e.must(e.do("GET", "/v1/contacts/c9/consent", e.read, nil), 200)
		var got struct {
			Consent []*nudge.ConsentState `json:"consent"`
		}
		json.Unmarshal(r.body, &got)
		for _, s := range got.Consent {
			if s.Channel == "sms" && s.Purpose == "marketing" && s.Status != "opted_out" {
				t.Errorf("sms/marketing = %s, want opted_out", s.Status)
			}
		}
		r = e.must(e.do("POST", "/v1/contacts/c9/consent", e.admin, `{"channel":"sms","status":"opted_in","source":"import"}`), 409)
	})
}

func TestImport(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		csvBody := "id,email,phone,plan\r\n" +
			"i1,i1@example.com,(415) 555-0101,pro\r\n" +
			"i2,i2@example.com,not a phone,free\r\n" +
			"i3,i3@example.com,+14155550103,free\r\n"
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/contacts/import", strings.NewReader(csvBody))
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+e.admin)
		r := e.must(e.send(req), 200)
		if r.json["imported"] != float64(2) || r.json["rejected"] != float64(1) {
			t.Errorf("summary: %s", r.body)
		}
		errs, _ := r.json["errors"].([]any)
		if len(errs) != 1 || !strings.Contains(string(r.body), `"line":3`) || !strings.Contains(string(r.body), "phone") {
			t.Errorf("row errors: %s", r.body)
		}
		if c := e.mustContact("i1"); c.Phone != "+14155550101" || c.Attributes["plan"] != "pro" {
			t.Errorf("i1 = %+v", c)
		}
		e.must(e.do("GET", "/v1/contacts/i2", e.read, nil), 404)

		t.Run("wrong column count", func(t *testing.T) {
			r := e.must(e.post("/v1/contacts/import", "text/csv", "id,email\nw1,w1@example.com\nw2\nw3,w3@example.com,extra\n"), 200)
			if r.json["imported"] != float64(1) || r.json["rejected"] != float64(2) ||
				!strings.Contains(string(r.body), `"line":3`) || !strings.Contains(string(r.body), `"line":4`) {
				t.Errorf("summary: %s", r.body)
			}
		})

		t.Run("multipart with mapping and consent", func(t *testing.T) {
			// m2 texted STOP: the CRM export saying opted_in must not undo it.
			e.must(e.do("PUT", "/v1/contacts/m2", e.admin, `{"phone":"+14155550202"}`), 201)
			e.must(e.do("POST", "/v1/contacts/m2/consent", e.admin,
				`{"channel":"sms","status":"opted_out","source":"keyword","evidence":{"keyword":"STOP"}}`), 201)

			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("mapping", `{"Contact ID":"id","Mobile":"phone","Texts OK":"sms_consent","Notes":"-"}`)
			fw, _ := mw.CreateFormFile("file", "crm.csv")
			io.WriteString(fw, "\ufeffContact ID,Mobile,Texts OK,Notes\r\nm1,+14155550201,yes,hi\r\nm2,+14155550202,yes,hello\r\n")
			mw.Close()
			r := e.must(e.post("/v1/contacts/import", mw.FormDataContentType(), buf.String()), 200)
			want := map[string]any{
				"rows": float64(2), "imported": float64(1), "updated": float64(1), "rejected": float64(0),
				"consent_recorded": float64(1), "consent_rejected": float64(1),
			}
			for k, v := range want {
				if r.json[k] != v {
					t.Errorf("%s = %v, want %v", k, r.json[k], v)
				}
			}
			errs, _ := r.json["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["line"] != float64(3) || errs[0].(map[string]any)["column"] != "Texts OK" {
				t.Errorf("errors: %s", r.body)
			}
			if c := e.mustContact("m1"); c.Phone != "+14155550201" || len(c.Attributes) != 0 {
				t.Errorf("m1 = %+v", c)
			}
			r = e.must(e.do("GET", "/v1/contacts/m2/consent", e.read, nil), 200)
			if !strings.Contains(string(r.body), `{"channel":"sms","purpose":"marketing","status":"opted_out"`) {
				t.Errorf("m2's consent: %s", r.body)
			}
		})

		t.Run("bad mapping", func(t *testing.T) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("mapping", `{"Mobile":"cell"}`)
			fw, _ := mw.CreateFormFile("file", "crm.csv")
			io.WriteString(fw, "id,Mobile\nx,+14155550201\n")
			mw.Close()
			r := e.must(e.post("/v1/contacts/import", mw.FormDataContentType(), buf.String()), 400)
			if !strings.Contains(r.errField("message"), "unknown field") {
				t.Errorf("answer: %s", r.body)
			}
		})

		t.Run("no id column", func(t *testing.T) {
			e.must(e.post("/v1/contacts/import", "text/csv", "plan\npro\n"), 400)
		})

		t.Run("role", func(t *testing.T) {
			e.must(e.do("POST", "/v1/contacts/import", e.read, csvBody), 403)
		})
		t.Run("bad content type", func(t *testing.T) {
			r := e.must(e.post("/v1/contacts/import", "application/json", "{}"), 400)
			if r.errField("field") != "Content-Type" {
				t.Errorf("answer: %s", r.body)
			}
		})
		t.Run("over the cap", func(t *testing.T) {
			small := newEnvWith(t, open(t), func(c *api.Config) { c.MaxImportBytes = 100 })
			rows := "id,email\n"
			for i := range 20 {
				rows += fmt.Sprintf("big%d,big%d@example.com\n", i, i)
			}
			r := small.must(small.post("/v1/contacts/import", "text/csv", rows), 413)
			if r.errField("message") != "request body is over 100 bytes, the limit for /v1/contacts/import" {
				t.Errorf("answer: %s", r.body)
			}
		})
	})
}

func TestStoreClosed(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		store := open(t)
		e := newEnvWith(t, store)
		e.must(e.do("GET", "/readyz", "", nil), 200)
		e.must(e.do("GET", "/v1/contacts", e.read, nil), 200) // the read key is now cached

		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.must(e.do("GET", "/readyz", "", nil), 503)
		if r.errField("code") != "unavailable" {
			t.Errorf("readyz: %s", r.body)
		}
		e.must(e.do("GET", "/healthz", "", nil), 200)
		for _, tc := range []struct{ method, path, token, body string }{
			{"GET", "/v1/contacts/c1", e.read, ""},
			{"GET", "/v1/contacts", e.read, ""},
			{"POST", "/v1/track", e.ingest, `{"userId":"u1","event":"e"}`}, // key not cached: auth reads the store
			{"PUT", "/v1/contacts/c1", e.admin, `{}`},
		} {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := e.must(e.do(tc.method, tc.path, tc.token, body), 503)
			if r.errField("code") != "unavailable" || r.header.Get("Retry-After") == "" {
				t.Errorf("%s %s: %s", tc.method, tc.path, r.body)
			}
		}
		if strings.Contains(e.logs.String(), "level=ERROR") {
			t.Errorf("an unavailable database was logged as an internal error:\n%s", e.logs)
		}
	})
}

// panicStore panics on ContactGet, as a bug would.
type panicStore struct{ nudge.Store }

func (panicStore) ContactGet(context.Context, string) (*nudge.Contact, error) { panic("bug") }

func TestPanicRecovered(t *testing.T) {
	e := newEnvWith(t, panicStore{nudgetest.SQLite(t)})
	r := e.must(e.do("GET", "/v1/contacts/c1", e.read, nil), 500)
	if r.errField("code") != "internal" || r.errField("message") != "internal error" {
		t.Errorf("answer: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "handler panicked") {
		t.Errorf("panic not logged:\n%s", e.logs)
	}
	e.must(e.do("GET", "/healthz", "", nil), 200)
}

func TestMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("POST", "/v1/track", e.ingest, `{"userId":"u1","event":"e","messageId":"m1"}`), 200)
		e.must(e.do("POST", "/v1/track", e.ingest, `{"userId":"u1","event":"e","messageId":"m1"}`), 200)
		e.must(e.do("POST", "/v1/batch", e.ingest, `{"batch":[
			{"type":"identify","userId":"u1","traits":{"plan":"pro"}},
			{"type":"track","userId":"u1","event":"e"},
			{"type":"track","event":"e"}]}`), 200)
		e.must(e.do("GET", "/v1/contacts", "", nil), 401)

		r := e.must(e.do("GET", "/metrics", "", nil), 200)
		body := string(r.body)
		for _, want := range []string{
			`nudge_ingest_events_total{outcome="stored",type="track"} 2`,
			`nudge_ingest_events_total{outcome="duplicate",type="track"} 1`,
			`nudge_ingest_events_total{outcome="stored",type="identify"} 1`,
			`nudge_ingest_events_total{outcome="rejected",type="unknown"} 1`,
			`nudge_ingest_batch_size_count 1`,
			`nudge_ingest_batch_size_sum 3`,
			`http_requests_total{code="200",method="POST",route="POST /v1/track"} 2`,
			`http_requests_total{code="401",method="GET",route="GET /v1/contacts"} 1`,
			`http_request_duration_seconds_count{route="POST /v1/batch"} 1`,
			`nudge_contacts_imported_total 0`,
			`go_goroutines`,
			`process_`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}
