package api_test

import (
	"fmt"
	"net/url"
	"testing"
)

func TestSuppressions(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)

		// One address: the phone number is normalized, the reason defaults.
		e.must(e.do("POST", "/v1/suppressions", e.read, map[string]any{"channel": "sms", "address": "+14155552671"}), 403)
		r := e.must(e.do("POST", "/v1/suppressions", e.admin, map[string]any{"channel": "sms", "address": "(415) 555-2671", "note": "asked by phone"}), 201)
		if r.json["channel"] != "sms" || r.json["reason"] != "do_not_contact" || r.json["source"] != "api" ||
			r.json["note"] != "asked by phone" || r.json["address_masked"] == "" || r.json["address_hash"] == "" {
			t.Fatalf("add: %s", r.body)
		}

		// Bad ones name their field.
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"channel": "fax", "address": "+14155552671"}, "channel"},
			{map[string]any{"address": "+14155552671"}, "channel"},
			{map[string]any{"channel": "sms", "address": "not a number"}, "address"},
			{map[string]any{"channel": "email", "address": "jane"}, "address"},
			{map[string]any{"channel": "email"}, "address"},
			{map[string]any{"channel": "email", "address": "jane@example.com", "reason": "annoyed"}, "reason"},
			{map[string]any{"channel": "email", "address": "jane@example.com", "why": "x"}, "why"},
			{map[string]any{"channel": "sms", "address": "+14155552671", "reason": "hard_bounce"}, "reason"},
		} {
			r := e.must(e.do("POST", "/v1/suppressions", e.admin, c.body), 400)
			if r.errField("field") != c.field {
				t.Errorf("%v: field %q, want %q: %s", c.body, r.errField("field"), c.field, r.body)
			}
		}

		// An array: the valid ones are added, the others reported by index.
		r = e.must(e.do("POST", "/v1/suppressions", e.admin, []map[string]any{
			{"channel": "email", "address": "jane@example.com", "reason": "hard_bounce"},
			{"channel": "sms", "address": "nope"},
			{"channel": "email", "address": "joe@example.com", "reason": "complaint"},
		}), 201)
		if n := len(r.json["suppressions"].([]any)); n != 2 {
			t.Fatalf("batch: %s", r.body)
		}
		errs := r.json["errors"].([]any)
		if len(errs) != 1 || errs[0].(map[string]any)["index"].(float64) != 1 || errs[0].(map[string]any)["field"] != "[1].address" {
			t.Fatalf("batch errors: %s", r.body)
		}
		r = e.must(e.do("POST", "/v1/suppressions", e.admin, []map[string]any{{"channel": "sms", "address": "nope"}}), 400)
		if r.errField("field") != "[0].address" {
			t.Fatalf("all bad: %s", r.body)
		}

		// The list pages, and filters by channel.
		r = e.must(e.do("GET", "/v1/suppressions", e.read, nil), 200)
		if n := len(r.json["suppressions"].([]any)); n != 3 || r.json["next_cursor"] != nil {
			t.Fatalf("list: %s", r.body)
		}
		var seen int
		cursor := ""
		for page := 0; ; page++ {
			r := e.must(e.do("GET", "/v1/suppressions?limit=2&cursor="+cursor, e.read, nil), 200)
			seen += len(r.json["suppressions"].([]any))
			c, _ := r.json["next_cursor"].(string)
			if c == "" || page > 3 {
				break
			}
			cursor = c
		}
		if seen != 3 {
			t.Errorf("paged %d suppressions, want 3", seen)
		}
		r = e.must(e.do("GET", "/v1/suppressions?channel=email", e.read, nil), 200)
		if n := len(r.json["suppressions"].([]any)); n != 2 {
			t.Fatalf("email list: %s", r.body)
		}
		for _, q := range []string{"?channel=fax", "?limit=0", "?cursor=x", "?chanel=sms"} {
			e.must(e.do("GET", "/v1/suppressions"+q, e.read, nil), 400)
		}

		// Remove: by the address as written, normalized; 404 when not listed.
		e.must(e.do("DELETE", "/v1/suppressions/sms/"+url.PathEscape("+14155552671"), e.read, nil), 403)
		e.must(e.do("DELETE", "/v1/suppressions/sms/"+url.PathEscape("415-555-2671"), e.admin, nil), 204)
		e.must(e.do("DELETE", "/v1/suppressions/sms/"+url.PathEscape("+14155552671"), e.admin, nil), 404)
		e.must(e.do("DELETE", "/v1/suppressions/email/jane@example.com", e.admin, nil), 204)
		e.must(e.do("DELETE", "/v1/suppressions/fax/123", e.admin, nil), 400)
		r = e.must(e.do("GET", "/v1/suppressions", e.read, nil), 200)
		if l := r.json["suppressions"].([]any); len(l) != 1 || fmt.Sprint(l[0].(map[string]any)["reason"]) != "complaint" {
			t.Fatalf("after remove: %s", r.body)
		}
	})
}
