package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/channel/webhook"
	"github.com/nudge/nudge/nudgetest"
)

// TestHostileInput sends what an attacker or a broken client would: each
// gets a clear 4xx saying what was wrong and where, is logged (route and
// code, not the refused data), and stores nothing.
func TestHostileInput(t *testing.T) {
	e := newEnvWith(t, nudgetest.SQLite(t), func(c *api.Config) {
		c.Templates = previewTemplates(t)
		c.CheckWebhookURL = func(u string) error { return webhook.CheckURL(u, false, nil) }
	})
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string // in the error's message or field
	}{
		{"oversize call", "POST", "/v1/track", `{"userId":"u1","event":"big","properties":{"x":"` + strings.Repeat("x", 40<<10) + `"}}`,
			http.StatusRequestEntityTooLarge, "over 32768 bytes"},
		{"deeply nested batch", "POST", "/v1/batch", `{"batch":[{"type":"track","userId":"u1","event":"deep","properties":` + deep(200) + `}]}`,
			http.StatusBadRequest, "nested deeper than 64 levels at line 1, column"},
		{"invalid UTF-8", "POST", "/v1/identify", "{\"userId\":\"u1\",\n\"traits\":{\"name\":\"a\xffb\"}}",
			http.StatusBadRequest, "invalid UTF-8 at line 2, column 20"},
		{"SSRF to cloud metadata", "POST", "/v1/webhooks", `{"url":"http://169.254.169.254/latest/meta-data","events":["message.sent"]}`,
			http.StatusBadRequest, "169.254.169.254 is a loopback, private, link-local or reserved address"},
		{"SSRF to localhost", "POST", "/v1/webhooks", `{"url":"http://localhost:6379/","events":["message.sent"]}`,
			http.StatusBadRequest, "localhost is this machine"},
		{"SSRF to a private address in IPv6 form", "POST", "/v1/webhooks", `{"url":"http://[::ffff:10.0.0.1]/","events":["message.sent"]}`,
			http.StatusBadRequest, "reserved address"},
		{"path traversal in a template name", "POST", "/v1/templates/..%2F..%2F..%2Fetc%2Fpasswd/preview", `{"contact_id":"u1"}`,
			http.StatusNotFound, "template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.Reset()
			token := e.admin
			if strings.HasPrefix(tc.path, "/v1/track") || strings.HasPrefix(tc.path, "/v1/batch") || strings.HasPrefix(tc.path, "/v1/identify") {
				token = e.ingest
			}
			r := e.must(e.do(tc.method, tc.path, token, tc.body), tc.status)
			if got := r.errField("message") + " " + r.errField("field"); !strings.Contains(got, tc.message) {
				t.Errorf("error %q does not say %q", got, tc.message)
			}
			if !strings.Contains(e.logs.String(), "request refused") {
				t.Errorf("not logged:\n%s", e.logs)
			}
			if strings.Contains(e.logs.String(), "etc/passwd") || strings.Contains(e.logs.String(), "a\xffb") {
				t.Errorf("the refused data is in the log:\n%s", e.logs)
			}
		})
	}

	// Nothing of the refused calls was stored.
	if evs, err := e.store.EventList(context.Background(), &nudge.EventListParams{ContactID: "u1"}); err != nil || len(evs.Events) != 0 {
		t.Errorf("events of u1 = %v, %v; want none", evs, err)
	}
	if _, err := e.store.ContactGet(context.Background(), "u1"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("contact u1 exists after refused calls: %v", err)
	}
	if subs, err := e.store.WebhookList(context.Background()); err != nil || len(subs) != 0 {
		t.Errorf("webhook subscriptions = %v, %v; want none", subs, err)
	}
}

// TestHostileStrings: SQL metacharacters in every string field are data,
// stored and returned as sent, on both stores; Liquid in a contact's
// attribute is rendered as text, never evaluated.
func TestHostileStrings(t *testing.T) {
	const sqlish = `x'); DROP TABLE contacts; -- " OR 1=1 \ %_`
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnvWith(t, open(t), func(c *api.Config) { c.Templates = previewTemplates(t) })
		id := "c'1;--"
		e.must(e.do("PUT", "/v1/contacts/c%271%3B--", e.admin, map[string]any{
			"email": "ann@example.com", "phone": "+14155552671",
			"attributes": map[string]any{"first_name": "{{ 7 | times: 7 }}{% assign x = 1 %}", sqlish: sqlish},
		}), http.StatusCreated)
		e.must(e.do("POST", "/v1/track", e.ingest, map[string]any{"userId": id, "event": sqlish,
			"properties": map[string]any{sqlish: sqlish}, "messageId": sqlish}), 200)

		c := e.mustContact("c%271%3B--")
		if c.ID != id || c.Attributes[sqlish] != sqlish {
			t.Errorf("contact = %q %v; want the strings as sent", c.ID, c.Attributes)
		}
		r := e.must(e.do("GET", "/v1/contacts/c%271%3B--/events", e.read, nil), 200)
		if !strings.Contains(string(r.body), `"name":"x'); DROP TABLE contacts; -- \" OR 1=1 \\ %_"`) {
			t.Errorf("event not stored as sent: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/contacts?limit=10", e.read, nil), 200)
		if !strings.Contains(string(r.body), `c'1;--`) {
			t.Errorf("the contacts table lost its contact: %s", r.body)
		}
		r = e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": id, "channel": "sms"}), 200)
		if text, _ := r.json["text"].(string); !strings.HasPrefix(text, "Hi {{ 7 | times: 7 }}{% assign x = 1 %}, see you soon.") {
			t.Errorf("an attribute's Liquid was evaluated: %q", text)
		}
	})
}
