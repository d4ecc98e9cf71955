package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nudge/nudge"
)

func TestWebhooks(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)

		t.Run("AdminOnly", func(t *testing.T) {
			for _, tok := range []string{e.read, e.ingest, ""} {
				if r := e.do("GET", "/v1/webhooks", tok, nil); r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
					t.Errorf("GET /v1/webhooks with a non-admin key: %d", r.status)
				}
			}
		})

		created := e.must(e.do("POST", "/v1/webhooks", e.admin, map[string]any{
			"url": "https://crm.example.com/nudge", "events": []string{"message.sent", "message.failed"},
		}), http.StatusCreated).json
		id, _ := created["id"].(string)
		secret, _ := created["secret"].(string)
		if !strings.HasPrefix(id, "wh_") || !strings.HasPrefix(secret, "whsec_") || len(secret) < 40 {
			t.Fatalf("created %v: want an id and a made secret", created)
		}
		chosen := e.must(e.do("POST", "/v1/webhooks", e.admin, map[string]any{
			"url": "http://other.example.com/x", "events": []string{"enrollment.converted"}, "secret": "0123456789abcdef-mine",
		}), http.StatusCreated).json
		if chosen["secret"] != "0123456789abcdef-mine" {
			t.Errorf("chosen secret answered as %v", chosen["secret"])
		}

		t.Run("Invalid", func(t *testing.T) {
			for _, tt := range []struct {
				body  string
				field string
			}{
				{`{"url":"ftp://x.io","events":["message.sent"]}`, "url"},
				{`{"url":"https://x.io","events":[]}`, "events"},
				{`{"url":"https://x.io","events":["message.sent","nope"]}`, "events[1]"},
				{`{"url":"https://x.io","events":["message.sent"],"secret":"short"}`, "secret"},
				{`{"url":"https://x.io","events":["message.sent"],"extra":1}`, "extra"},
			} {
				r := e.must(e.do("POST", "/v1/webhooks", e.admin, tt.body), http.StatusBadRequest)
				if f := r.errField("field"); f != tt.field {
					t.Errorf("%s: field %q, want %q (%s)", tt.body, f, tt.field, r.body)
				}
			}
		})

		t.Run("ListHidesSecrets", func(t *testing.T) {
			r := e.must(e.do("GET", "/v1/webhooks", e.admin, nil), http.StatusOK)
			subs, _ := r.json["webhooks"].([]any)
			if len(subs) != 2 {
				t.Fatalf("webhooks %v, want 2", r.json)
			}
			if strings.Contains(string(r.body), "whsec_") || strings.Contains(string(r.body), "mine") {
				t.Errorf("the list shows a secret: %s", r.body)
			}
		})

		t.Run("Deliveries", func(t *testing.T) {
			var ds []*nudge.WebhookDelivery
			for i := range 3 {
				ds = append(ds, &nudge.WebhookDelivery{SubscriptionID: id, EventID: fmt.Sprintf("m%d:sent", i),
					Event: "message.sent", Attempt: 1, StatusCode: 200, OK: true, At: e.clock.Now()})
			}
			if err := e.store.WebhookDeliveryLog(context.Background(), ds); err != nil {
				t.Fatal(err)
			}
			r := e.must(e.do("GET", "/v1/webhooks/"+id+"/deliveries?limit=2", e.admin, nil), http.StatusOK)
			got, _ := r.json["deliveries"].([]any)
			if len(got) != 2 || got[0].(map[string]any)["event_id"] != "m2:sent" {
				t.Fatalf("deliveries %s: want the newest two", r.body)
			}
			next, _ := r.json["next"].(string)
			r = e.must(e.do("GET", "/v1/webhooks/"+id+"/deliveries?limit=2&before_id="+next, e.admin, nil), http.StatusOK)
			got, _ = r.json["deliveries"].([]any)
			if len(got) != 1 || got[0].(map[string]any)["event_id"] != "m0:sent" || r.json["next"] != nil {
				t.Errorf("second page %s: want the oldest, and no next", r.body)
			}
			e.must(e.do("GET", "/v1/webhooks/wh_nope/deliveries", e.admin, nil), http.StatusNotFound)
			e.must(e.do("GET", "/v1/webhooks/"+id+"/deliveries?before=1", e.admin, nil), http.StatusBadRequest)
		})

		t.Run("Delete", func(t *testing.T) {
			e.must(e.do("DELETE", "/v1/webhooks/"+id, e.admin, nil), http.StatusNoContent)
			e.must(e.do("DELETE", "/v1/webhooks/"+id, e.admin, nil), http.StatusNotFound)
			r := e.must(e.do("GET", "/v1/webhooks", e.admin, nil), http.StatusOK)
			if subs, _ := r.json["webhooks"].([]any); len(subs) != 1 {
				t.Errorf("after delete: %s", r.body)
			}
		})
	})
}
