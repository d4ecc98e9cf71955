package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

const (
	sendgridPath = "/v1/webhooks/sendgrid"
	emailPath    = "/v1/webhooks/email"
	janeEmail    = "jane@example.com"
	// e1ProviderID is e1's Message-ID as the SMTP channel sets it, without
	// the angle brackets.
	e1ProviderID = "e1@mail.example.com"
)

// emailEnv is an API with SendGrid's webhook configured for key, and
// contact jane (jane@example.com) with one marketing email, e1, that the
// SMTP server accepted (status sent, provider id e1@mail.example.com).
type emailEnv struct {
	*env
	key *ecdsa.PrivateKey
}

func newEmailEnv(t *testing.T, open opener) *emailEnv {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ee := &emailEnv{key: key}
	ee.env = newEnvWith(t, open(t), func(c *api.Config) { c.SendGridPublicKey = base64.StdEncoding.EncodeToString(der) })
	seedEmail(t, ee.env)
	return ee
}

func seedEmail(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	t0 := nudgetest.Epoch
	if _, _, err := e.store.ContactPut(ctx, &nudge.Contact{ID: "jane", Email: janeEmail}, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "webinar-reminder", Name: "Webinar reminder", Source: []byte(webinarYAML(t))}, t0); err != nil {
		t.Fatal(err)
	}
	en := &nudge.Enrollment{ID: "en1", JourneyID: "webinar-reminder", Version: 1, ContactID: "jane", State: nudge.EnrollmentWaiting,
		StepID: "hour-before", WakeAt: t0.Add(48 * time.Hour), EnteredAt: t0, UpdatedAt: t0, Steps: map[string]nudge.StepRecord{}}
	m := &nudge.Message{ID: "e1", EnrollmentID: "en1", ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, StepID: "invite",
		Channel: nudge.ChannelEmail, Template: "webinar-email", Purpose: nudge.PurposeMarketing, Status: nudge.MessageQueued,
		IdempotencyKey: "en1:invite", AvailableAt: t0, CreatedAt: t0, UpdatedAt: t0}
	if err := e.store.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{en}, Messages: []*nudge.Message{m}}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.MessageUpdate(ctx, []*nudge.MessageUpdate{
		{MessageID: "e1", Status: nudge.MessageSending, Attempts: 1},
		{MessageID: "e1", Status: nudge.MessageSent, ProviderID: e1ProviderID},
	}, t0); err != nil {
		t.Fatal(err)
	}
}

// sendgrid posts events signed as SendGrid signs them, now.
func (e *emailEnv) sendgrid(events ...any) *response {
	e.t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		e.t.Fatal(err)
	}
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	return e.sendgridSigned(body, ts, e.sign(e.key, ts, body))
}

func (e *emailEnv) sign(key *ecdsa.PrivateKey, ts string, body []byte) string {
	e.t.Helper()
	sum := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		e.t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func (e *emailEnv) sendgridSigned(body []byte, ts, sig string) *response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+sendgridPath, strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
	}
	if ts != "" {
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	}
	return e.send(req)
}

// sgEvent is a SendGrid event about e1, with the fields given in kv.
func sgEvent(event, id string, kv ...string) map[string]any {
	ev := map[string]any{"email": janeEmail, "timestamp": nudgetest.Epoch.Unix(), "event": event,
		"sg_event_id": id, "sg_message_id": "sgm1.filter0001", "smtp-id": "<" + e1ProviderID + ">"}
	for i := 0; i+1 < len(kv); i += 2 {
		ev[kv[i]] = kv[i+1]
	}
	return ev
}

func (e *env) emailEvents(contactID, name string) []*nudge.Event {
	e.t.Helper()
	p, err := e.store.EventList(context.Background(), &nudge.EventListParams{ContactID: contactID, Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Events
}

func (e *env) emailSuppressions(contactID string) []string {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.store.ContactGet(ctx, contactID)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := e.store.SuppressionsFor(ctx, []*nudge.Contact{c})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range m[contactID] {
		if s.Channel == nudge.ChannelEmail {
			out = append(out, s.Reason)
		}
	}
	return out
}

func (e *env) emailConsent(contactID string) *nudge.ConsentState {
	e.t.Helper()
	states, err := e.store.ConsentList(context.Background(), contactID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, st := range states {
		if st.Channel == nudge.ChannelEmail && st.Purpose == nudge.PurposeMarketing {
			return st
		}
	}
	return nil
}

// outcomes lists the outcome of each item of a webhook's answer.
func outcomes(r *response) []string {
	var out []string
	results, _ := r.json["results"].([]any)
	for _, x := range results {
		m, _ := x.(map[string]any)
		s, _ := m["outcome"].(string)
		out = append(out, s)
	}
	return out
}

func TestSendGridSignature(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEmailEnv(t, open)
		body, _ := json.Marshal([]any{sgEvent("delivered", "ev1")})
		now := strconv.FormatInt(e.clock.Now().Unix(), 10)
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		old := strconv.FormatInt(e.clock.Now().Add(-11*time.Minute).Unix(), 10)
		future := strconv.FormatInt(e.clock.Now().Add(11*time.Minute).Unix(), 10)
		for _, c := range []struct {
			name, ts, sig string
			body          []byte
		}{
			{"missing signature", now, "", body},
			{"missing timestamp", "", e.sign(e.key, now, body), body},
			{"another key", now, e.sign(other, now, body), body},
			{"other body", now, e.sign(e.key, now, body), []byte(`[]`)},
			{"other timestamp", strconv.FormatInt(e.clock.Now().Unix()-1, 10), e.sign(e.key, now, body), body},
			{"not base64", now, "%%%", body},
			{"old timestamp", old, e.sign(e.key, old, body), body},
			{"future timestamp", future, e.sign(e.key, future, body), body},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.must(e.sendgridSigned(c.body, c.ts, c.sig), 403)
				if r.errField("code") != nudge.EFORBIDDEN {
					t.Errorf("body: %s", r.body)
				}
			})
		}
		if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent"}) {
			t.Errorf("a rejected webhook changed the message: %v", got)
		}
		// Nine minutes old is within the window.
		ts := strconv.FormatInt(e.clock.Now().Add(-9*time.Minute).Unix(), 10)
		e.must(e.sendgridSigned(body, ts, e.sign(e.key, ts, body)), 200)
		if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
			t.Errorf("history: %v", got)
		}
	})
}

func TestSendGridNotConfigured(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnvWith(t, open(t))
		e.must(e.do("POST", sendgridPath, "", `[]`), 404)
	})
	if _, err := api.New(api.Config{Store: nudgetest.SQLite(t), SendGridPublicKey: "bm90IGEga2V5"}); err == nil {
		t.Error("New accepted a SendGrid key that is no key")
	}
}

func TestSendGridEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		t.Run("delivered once", func(t *testing.T) {
			e := newEmailEnv(t, open)
			r := e.must(e.sendgrid(sgEvent("processed", "ev0"), sgEvent("delivered", "ev1")), 200)
			if got := outcomes(r); !equal(got, []string{"ignored", "applied"}) {
				t.Errorf("outcomes %v; body %s", got, r.body)
			}
			// SendGrid retries the same event: stored once.
			r = e.must(e.sendgrid(sgEvent("delivered", "ev1")), 200)
			if got := outcomes(r); !equal(got, []string{"duplicate"}) {
				t.Errorf("outcomes %v; body %s", got, r.body)
			}
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
				t.Errorf("history: %v", got)
			}
			evs := e.emailEvents("jane", "email.delivered")
			if len(evs) != 1 {
				t.Fatalf("%d email.delivered events, want 1", len(evs))
			}
			if evs[0].Properties["message_id"] != "e1" || evs[0].MessageID != "sendgrid-ev1" {
				t.Errorf("event: %+v", evs[0])
			}
		})
		t.Run("hard bounce", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.sendgrid(sgEvent("bounce", "ev2", "type", "bounce", "reason", "550 5.1.1 no such user", "status", "5.1.1")), 200)
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "failed"}) {
				t.Errorf("history: %v", got)
			}
			if got := e.emailSuppressions("jane"); !equal(got, []string{nudge.SuppressHardBounce}) {
				t.Errorf("suppressions: %v", got)
			}
			if len(e.emailEvents("jane", "email.bounced")) != 1 {
				t.Error("no email.bounced event")
			}
			if st := e.emailConsent("jane"); st != nil {
				t.Errorf("a bounce changed consent: %+v", st)
			}
		})
		t.Run("blocked bounce", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.sendgrid(sgEvent("bounce", "ev3", "type", "blocked")), 200)
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "undelivered"}) {
				t.Errorf("history: %v", got)
			}
			if got := e.emailSuppressions("jane"); len(got) != 0 {
				t.Errorf("a blocked message suppressed the address: %v", got)
			}
		})
		t.Run("dropped", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.sendgrid(sgEvent("dropped", "ev4", "reason", "Invalid")), 200)
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "failed"}) {
				t.Errorf("history: %v", got)
			}
		})
		t.Run("complaint", func(t *testing.T) {
			e := newEmailEnv(t, open)
			ev := sgEvent("spamreport", "ev5")
			delete(ev, "smtp-id") // SendGrid's spam reports carry none: jane is found by address
			for range 2 {
				e.must(e.sendgrid(ev), 200)
			}
			if got := e.emailSuppressions("jane"); !equal(got, []string{nudge.SuppressComplaint}) {
				t.Errorf("suppressions: %v", got)
			}
			st := e.emailConsent("jane")
			if st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceProvider {
				t.Fatalf("consent: %+v", st)
			}
			l := e.ledger("jane")
			if len(l) != 1 || l[0].Evidence.Text != "spam complaint" {
				t.Errorf("ledger: %+v", l)
			}
			if n := len(e.emailEvents("jane", "email.complained")); n != 1 {
				t.Errorf("%d email.complained events, want 1", n)
			}
		})
		t.Run("unsubscribe", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.sendgrid(sgEvent("group_unsubscribe", "ev6", "asm_group_id", "42")), 200)
			st := e.emailConsent("jane")
			if st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceProvider {
				t.Fatalf("consent: %+v", st)
			}
			if got := e.emailSuppressions("jane"); len(got) != 0 {
				t.Errorf("an unsubscribe suppressed the address: %v", got)
			}
		})
		t.Run("open and click", func(t *testing.T) {
			e := newEmailEnv(t, open)
			// Opens and clicks carry no smtp-id; the unique arg names the message.
			o := sgEvent("open", "ev7", "nudge_message_id", "e1")
			c := sgEvent("click", "ev8", "nudge_message_id", "e1", "url", "https://example.com/webinar")
			delete(o, "smtp-id")
			delete(c, "smtp-id")
			r := e.must(e.sendgrid(o, c), 200)
			if got := outcomes(r); !equal(got, []string{"applied", "applied"}) {
				t.Errorf("outcomes %v; body %s", got, r.body)
			}
			if n := len(e.emailEvents("jane", "email.opened")); n != 1 {
				t.Errorf("%d email.opened events", n)
			}
			clicks := e.emailEvents("jane", "email.clicked")
			if len(clicks) != 1 {
				t.Fatalf("%d email.clicked events", len(clicks))
			}
			p := clicks[0].Properties
			if p["url"] != "https://example.com/webinar" || p["message_id"] != "e1" || p["step_id"] != "invite" || p["journey_id"] != "webinar-reminder" {
				t.Errorf("click properties: %v", p)
			}
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent"}) {
				t.Errorf("an open changed the status: %v", got)
			}
		})
		t.Run("unknown message", func(t *testing.T) {
			e := newEmailEnv(t, open)
			ev := sgEvent("bounce", "ev9", "type", "bounce", "email", "nobody@example.org", "smtp-id", "<other@elsewhere>")
			r := e.must(e.sendgrid(ev), 200)
			if got := outcomes(r); !equal(got, []string{"unknown_message"}) {
				t.Errorf("outcomes %v; body %s", got, r.body)
			}
			l, err := e.store.SuppressionList(context.Background(), &nudge.SuppressionListParams{Channel: nudge.ChannelEmail})
			if err != nil {
				t.Fatal(err)
			}
			if len(l) != 1 || l[0].Reason != nudge.SuppressHardBounce {
				t.Errorf("the bounced address is not suppressed: %+v", l)
			}
		})
		t.Run("one bad item", func(t *testing.T) {
			e := newEmailEnv(t, open)
			r := e.must(e.sendgrid(
				"not an object",
				sgEvent("delivered", "ev10"),
				map[string]any{"event": "teleported", "sg_event_id": "ev11"},
				map[string]any{"event": "click", "sg_event_id": "ev12", "timestamp": "yesterday"},
				sgEvent("click", "ev13"), // no url
			), 200)
			if got := outcomes(r); !equal(got, []string{"error", "applied", "error", "error", "error"}) {
				t.Errorf("outcomes %v; body %s", got, r.body)
			}
			if r.json["applied"] != float64(1) || r.json["errors"] != float64(4) {
				t.Errorf("body: %s", r.body)
			}
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
				t.Errorf("history: %v", got)
			}
		})
		t.Run("not an array", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.sendgrid(), 200) // an empty batch
			body := []byte(`{"event":"delivered"}`)
			ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
			e.must(e.sendgridSigned(body, ts, e.sign(e.key, ts, body)), 400)
		})
	})
}

func TestGenericEmailEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEmailEnv(t, open)
		body := map[string]any{"events": []any{
			map[string]any{"id": "p1", "message_id": "e1", "type": "delivered", "at": "2026-01-01T10:00:00Z"},
			map[string]any{"id": "p2", "message_id": "<" + e1ProviderID + ">", "type": "click", "url": "https://example.com/a"},
			map[string]any{"id": "p3", "message_id": "e1", "type": "bounce", "bounce": "sometimes"},
			map[string]any{"id": "p4", "message_id": "e1", "type": "complaint", "extra": 1},
		}}
		e.must(e.do("POST", emailPath, "", body), 401)
		e.must(e.do("POST", emailPath, e.read, body), 403)
		r := e.must(e.do("POST", emailPath, e.ingest, body), 200)
		if got := outcomes(r); !equal(got, []string{"applied", "applied", "error", "error"}) {
			t.Errorf("outcomes %v; body %s", got, r.body)
		}
		results := r.json["results"].([]any)
		if f := results[2].(map[string]any)["field"]; f != "events[2].bounce" {
			t.Errorf("field of the bad bounce: %v", f)
		}
		if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
			t.Errorf("history: %v", got)
		}
		evs := e.emailEvents("jane", "email.delivered")
		if len(evs) != 1 || !evs[0].Timestamp.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("email.delivered events: %+v", evs)
		}
		if n := len(e.emailEvents("jane", "email.clicked")); n != 1 {
			t.Errorf("%d email.clicked events", n)
		}
		// Again: stored once.
		r = e.must(e.do("POST", emailPath, e.ingest, map[string]any{"events": body["events"].([]any)[:2]}), 200)
		if got := outcomes(r); !equal(got, []string{"duplicate", "duplicate"}) {
			t.Errorf("outcomes %v; body %s", got, r.body)
		}

		t.Run("hard bounce and complaint", func(t *testing.T) {
			e := newEmailEnv(t, open)
			e.must(e.do("POST", emailPath, e.ingest, map[string]any{"events": []any{
				map[string]any{"id": "q1", "message_id": "e1", "type": "bounce", "bounce": "hard"},
				map[string]any{"id": "q2", "message_id": "e1", "type": "complaint"},
			}}), 200)
			if got := e.history("e1"); !equal(got, []string{"queued", "sending", "sent", "failed"}) {
				t.Errorf("history: %v", got)
			}
			if got := e.emailSuppressions("jane"); len(got) != 2 {
				t.Errorf("suppressions: %v", got)
			}
			if st := e.emailConsent("jane"); st == nil || st.Status != nudge.ConsentOptedOut {
				t.Errorf("consent: %+v", st)
			}
		})
		t.Run("malformed", func(t *testing.T) {
			e.must(e.do("POST", emailPath, e.ingest, `{"events": {}}`), 400)
			e.must(e.do("POST", emailPath, e.ingest, `{}`), 400)
		})
	})
}
