package api_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/template"
)

func previewTemplates(t *testing.T) *template.Set {
	t.Helper()
	set, err := template.Load(fstest.MapFS{
		"welcome.email.liquid": {Data: []byte("Subject: Hi {{ contact.attributes.first_name }}\n\n" +
			"Hello {{ contact.attributes.first_name | default: \"there\" }}.\n--- html ---\n<p>Hello {{ contact.attributes.first_name }}</p>\n")},
		"welcome.sms.liquid": {Data: []byte("Hi {{ contact.attributes.first_name }}, see you soon. Reply STOP to opt out.")},
		"party.sms.liquid": {Data: []byte("🎉 {{ contact.attributes.first_name }}, the party starts at 8! " +
			"Bring a friend, bring snacks, bring your best dance moves. Reply STOP to opt out.")},
	}, template.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestTemplatePreview(t *testing.T) {
	set := previewTemplates(t)
	e := newEnvWith(t, nudgetest.SQLite(t), func(c *api.Config) {
		c.Templates = set
		c.SMSLimits = template.SMSLimits{PricePerSegment: 0.0079}
	})
	if _, _, err := e.store.ContactPut(context.Background(), &nudge.Contact{ID: "c1", Email: "ann@example.com",
		Phone: "+14155552671", Timezone: "America/Los_Angeles",
		Attributes: map[string]any{"first_name": "Ann <b>"}}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	t.Run("email", func(t *testing.T) {
		r := e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": "c1"}), 200)
		if r.json["channel"] != "email" || r.json["subject"] != "Hi Ann <b>" || !strings.Contains(r.json["html"].(string), "Ann &lt;b&gt;") {
			t.Errorf("email preview: %s", r.body)
		}
		if r.json["sms"] != nil {
			t.Errorf("an email has no SMS lint: %s", r.body)
		}
	})
	t.Run("sms", func(t *testing.T) {
		r := e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": "c1", "channel": "sms"}), 200)
		sms := r.json["sms"].(map[string]any)
		if r.json["text"] != "Hi Ann <b>, see you soon. Reply STOP to opt out." || sms["encoding"] != "GSM-7" || sms["segments"] != float64(1) {
			t.Errorf("sms preview: %s", r.body)
		}
	})
	t.Run("emoji", func(t *testing.T) {
		r := e.must(e.do("POST", "/v1/templates/party/preview", e.read, map[string]any{"contact_id": "c1", "channel": "sms"}), 200)
		sms := r.json["sms"].(map[string]any)
		// 116 UTF-16 units (the emoji counts 2): over 70, so 67 a segment.
		if sms["encoding"] != "UCS-2" || sms["not_gsm"] != "🎉" || sms["segments"] != float64(2) {
			t.Errorf("emoji preview: %s", r.body)
		}
		if cost, _ := sms["cost"].(float64); cost < 0.0157 || cost > 0.0159 {
			t.Errorf("cost %v, want 2 × 0.0079", sms["cost"])
		}
		if w := sms["warnings"].([]any); len(w) != 1 || !strings.Contains(w[0].(string), "UCS-2") {
			t.Errorf("warnings: %v", w)
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		r := e.must(e.do("POST", "/v1/templates/draft/preview", e.read, map[string]any{"contact_id": "c1", "channel": "sms",
			"source": "Hi\n{% if contact.email %}no end"}), 400)
		if msg := r.errField("message"); !strings.Contains(msg, "draft.sms.liquid:2") {
			t.Errorf("want file:line in %q", msg)
		}
	})
	t.Run("errors", func(t *testing.T) {
		e.must(e.do("POST", "/v1/templates/nope/preview", e.read, map[string]any{"contact_id": "c1"}), 404)
		e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": "nobody"}), 404)
		e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{}), 400)
		e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": "c1", "channel": "fax"}), 400)
		e.must(e.do("POST", "/v1/templates/welcome/preview", e.ingest, map[string]any{"contact_id": "c1"}), 403)
		e.must(e.do("POST", "/v1/templates/welcome/preview", "", map[string]any{"contact_id": "c1"}), 401)
	})
}

func TestTemplatePreviewNoTemplates(t *testing.T) {
	e := newEnvWith(t, nudgetest.SQLite(t))
	e.must(e.do("POST", "/v1/templates/welcome/preview", e.read, map[string]any{"contact_id": "c1"}), 404)
}
