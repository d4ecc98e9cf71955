package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// TestServePausesStep: the server's opt-out check pauses an SMS step
// whose texts were followed by 5 STOPs in 200, tells a webhook subscription
// (step.paused), shows the pause in the journey, and the CLI resumes it.
func TestServePausesStep(t *testing.T) {
	got := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hook.Close()

	s, db := remindStore(t)
	ctx, at := context.Background(), nudgetest.Epoch
	c := &nudge.EngineCommit{}
	for i := range 200 {
		id := fmt.Sprintf("c%03d", i)
		if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: id, Phone: fmt.Sprintf("+1312555%04d", i)}, at); err != nil {
			t.Fatal(err)
		}
		en := &nudge.Enrollment{ID: "e" + id, JourneyID: "remind", Version: 1, ContactID: id, State: nudge.EnrollmentCompleted, EnteredAt: at, EndedAt: at}
		c.Enrollments = append(c.Enrollments, en)
		c.Messages = append(c.Messages, &nudge.Message{ID: "m" + id, EnrollmentID: en.ID, ContactID: id, JourneyID: "remind", Version: 1,
			StepID: "text", Channel: nudge.ChannelSMS, Template: "remind-sms", Status: nudge.MessageDelivered, IdempotencyKey: "k" + id, AvailableAt: at})
	}
	if err := s.EngineCommit(ctx, c, at); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: fmt.Sprintf("c%03d", i), Channel: nudge.ChannelSMS,
			Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: at.Add(time.Hour)}}, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WebhookCreate(ctx, &nudge.WebhookSubscription{ID: "wh1", URL: hook.URL, Events: []string{nudge.WebhookStepPaused},
		Secret: "0123456789abcdef0123", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	m, key := startMain(t, db, func(m *Main) {
		m.Clock = nudgetest.NewClock(at.Add(2 * time.Hour))
		m.Delivery.WebhookAllowPrivate = true
	})
	select {
	case b := <-got:
		var ev struct {
			Type string          `json:"type"`
			Data nudge.StepPause `json:"data"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
		if ev.Type != nudge.WebhookStepPaused || ev.Data.StepID != "text" || ev.Data.Sent != 200 || ev.Data.OptedOut != 5 {
			t.Errorf("webhook event = %s", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no step.paused webhook call within 20s")
	}
	cl := &client{t: t, base: "http://" + m.Addr(), key: key}
	var j struct {
		PausedSteps []nudge.StepPause `json:"paused_steps"`
	}
	if code := cl.do("GET", "/v1/journeys/remind", "", &j); code != 200 || len(j.PausedSteps) != 1 || j.PausedSteps[0].StepID != "text" {
		t.Errorf("GET /v1/journeys/remind = %d, paused steps %+v; want text", code, j.PausedSteps)
	}
	m.Close()

	var out, errOut strings.Builder
	if err := runJourney(ctx, "list", []string{"--db", db}, &out, &errOut); err != nil || !strings.Contains(out.String(), "text (2.5% opt-outs") {
		t.Errorf("journey list = %v:\n%s", err, out.String())
	}
	out.Reset()
	if err := runJourney(ctx, "resume", []string{"--db", db, "remind", "--step", "text"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "step text of remind is resumed") {
		t.Errorf("journey resume --step = %v: %s %s", err, out.String(), errOut.String())
	}
	if err := runJourney(ctx, "resume", []string{"--db", db, "remind", "--step", "text"}, &out, &errOut); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("second resume --step = %v, want ENOTFOUND", err)
	}
}
