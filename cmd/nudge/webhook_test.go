package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/nudgetest"
)

// TestServeWebhooksFromCallbacks: what providers and people send back
// reaches webhook subscriptions through the server: a Twilio delivery
// report (message.delivered), an SMS reply (sms.replied) and a STOP
// (consent.opted_out), each POSTed to a real local HTTP server.
func TestServeWebhooksFromCallbacks(t *testing.T) {
	got := make(chan string, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
		}
		json.Unmarshal(b, &ev)
		got <- ev.Type
	}))
	defer hook.Close()

	s, db := remindStore(t)
	ctx, at := context.Background(), nudgetest.Epoch
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "ada", Phone: "+13125550100"}, at); err != nil {
		t.Fatal(err)
	}
	en := &nudge.Enrollment{ID: "e1", JourneyID: "remind", Version: 1, ContactID: "ada", State: nudge.EnrollmentCompleted, EnteredAt: at, EndedAt: at}
	msg := &nudge.Message{ID: "m1", EnrollmentID: "e1", ContactID: "ada", JourneyID: "remind", Version: 1, StepID: "text",
		Channel: nudge.ChannelSMS, Template: "remind-sms", Status: nudge.MessageQueued, IdempotencyKey: "e1:text", AvailableAt: at}
	if err := s.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{en}, Messages: []*nudge.Message{msg}}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageUpdate(ctx, []*nudge.MessageUpdate{
		{MessageID: "m1", Status: nudge.MessageSending},
		{MessageID: "m1", Status: nudge.MessageSent, ProviderID: "SM00000000000000000000000000000001"}}, at); err != nil {
		t.Fatal(err)
	}
	if err := s.WebhookCreate(ctx, &nudge.WebhookSubscription{ID: "crm", URL: hook.URL, Secret: "0123456789abcdef0123", CreatedAt: at,
		Events: []string{nudge.WebhookMessageDelivered, nudge.WebhookSMSReplied, nudge.WebhookConsentOptedOut}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	const token = "twilio-auth-token"
	m, _ := startMain(t, db, func(m *Main) {
		m.Delivery.TwilioAuthToken = token
		m.Delivery.WebhookAllowPrivate = true
	})
	post := func(path string, form url.Values) {
		t.Helper()
		u := "http://" + m.Addr() + path
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilio.Sign(token, u, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s = %d", path, resp.StatusCode)
		}
	}
	post("/v1/webhooks/twilio/status", url.Values{"MessageSid": {"SM00000000000000000000000000000001"}, "MessageStatus": {"delivered"},
		"To": {"+13125550100"}, "From": {"+18005550199"}, "AccountSid": {"AC1"}})
	inbound := func(sid, body string) url.Values {
		return url.Values{"MessageSid": {sid}, "AccountSid": {"AC1"}, "From": {"+13125550100"}, "To": {"+18005550199"},
			"Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"}}
	}
	post("/v1/webhooks/twilio/inbound", inbound("SM00000000000000000000000000000002", "Is there a recording?"))
	post("/v1/webhooks/twilio/inbound", inbound("SM00000000000000000000000000000003", "STOP"))

	seen := map[string]int{}
	deadline := time.After(20 * time.Second)
	for seen[nudge.WebhookMessageDelivered] == 0 || seen[nudge.WebhookSMSReplied] == 0 || seen[nudge.WebhookConsentOptedOut] == 0 {
		select {
		case typ := <-got:
			seen[typ]++
		case <-deadline:
			t.Fatalf("webhook events within 20s: %v; want message.delivered, sms.replied and consent.opted_out", seen)
		}
	}
	if seen[nudge.WebhookSMSReplied] != 1 {
		t.Errorf("sms.replied %d times; want once (the STOP is a keyword, not a reply)", seen[nudge.WebhookSMSReplied])
	}
}

// TestServeWebhookEnrollmentConverted: a contact who meets a journey's goal
// is told to the CRM as enrollment.converted.
func TestServeWebhookEnrollmentConverted(t *testing.T) {
	got := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hook.Close()
	m, key := startMain(t, filepath.Join(t.TempDir(), "nudge.db"), func(m *Main) { m.Delivery.WebhookAllowPrivate = true })
	c := &client{t: t, base: "http://" + m.Addr(), key: key}
	const yaml = `id: trial
name: Trial
trigger: {event: trial.started}
goal: {event: plan.purchased}
steps:
  - id: wait
    wait: {for: 72h}
`
	if code := c.do("POST", "/v1/journeys", yaml, nil); code != 200 && code != 201 {
		t.Fatalf("publish: %d", code)
	}
	if code := c.do("POST", "/v1/webhooks", `{"url": "`+hook.URL+`", "events": ["enrollment.converted"]}`, nil); code != 201 && code != 200 {
		t.Fatalf("subscribe: %d", code)
	}
	c.do("POST", "/v1/identify", `{"userId":"u1","traits":{"email":"u1@example.com"}}`, nil)
	c.do("POST", "/v1/track", `{"userId":"u1","event":"trial.started","messageId":"t1"}`, nil)
	// The goal, once the enrollment exists.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ens, err := m.Store.EnrollmentList(context.Background(), &nudge.EnrollmentListParams{JourneyID: "trial"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ens) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no enrollment within 20s")
		}
	}
	c.do("POST", "/v1/track", `{"userId":"u1","event":"plan.purchased","messageId":"p1"}`, nil)
	select {
	case b := <-got:
		var ev struct {
			Type string           `json:"type"`
			Data nudge.Enrollment `json:"data"`
		}
		if err := json.Unmarshal(b, &ev); err != nil || ev.Type != nudge.WebhookEnrollmentConverted || ev.Data.JourneyID != "trial" ||
			ev.Data.ContactID != "u1" || ev.Data.State != nudge.EnrollmentConverted {
			t.Errorf("webhook body %s (%v); want enrollment.converted of u1 in trial", b, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no enrollment.converted call within 20s")
	}
}
