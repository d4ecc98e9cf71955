package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// seedTimeline gives contact jane one enrollment in webinar-reminder v1: an
// entry, an email sent, an SMS deferred by quiet hours, then sent.
func seedTimeline(t *testing.T, e *env) time.Time {
	t.Helper()
	ctx := context.Background()
	t0 := nudgetest.Epoch
	if _, _, err := e.store.ContactPut(ctx, &nudge.Contact{ID: "jane", Email: "jane@example.com", Phone: "+13125550100"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "webinar-reminder", Name: "Webinar reminder", Source: []byte(webinarYAML(t))}, t0); err != nil {
		t.Fatal(err)
	}
	en := &nudge.Enrollment{ID: "en1", JourneyID: "webinar-reminder", Version: 1, ContactID: "jane", State: nudge.EnrollmentWaiting,
		StepID: "hour-before", WakeAt: t0.Add(48 * time.Hour), EnteredAt: t0, Steps: map[string]nudge.StepRecord{}}
	d := func(at time.Time, step, channel, outcome, reason, msg string, details map[string]any) *nudge.Decision {
		return &nudge.Decision{At: at, ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, EnrollmentID: "en1",
			StepID: step, Channel: channel, Outcome: outcome, Reason: reason, Message: msg, Details: details}
	}
	deferAt, sendAt := t0.Add(7*time.Hour+30*time.Minute), t0.Add(18*time.Hour+4*time.Minute)
	m := func(id, step, channel, template, purpose string, at time.Time) *nudge.Message {
		return &nudge.Message{ID: id, EnrollmentID: "en1", ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, StepID: step,
			Channel: channel, Template: template, Purpose: purpose, Status: nudge.MessageQueued, IdempotencyKey: "en1:" + step,
			AvailableAt: at, CreatedAt: at, UpdatedAt: at}
	}
	// Three transitions, each committed at its own now, as the engine does.
	commits := []struct {
		at time.Time
		c  *nudge.EngineCommit
	}{
		{t0, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(t0, "", "", nudge.OutcomeEntered, "entered_event", "Entered on webinar.registered.", nil),
			d(t0, "confirm", "email", nudge.OutcomeSent, "queued", "Sent email 'webinar-confirmation' (step confirm).",
				map[string]any{"template": "webinar-confirmation", "message_id": "m1"}),
		}, Messages: []*nudge.Message{m("m1", "confirm", "email", "webinar-confirmation", "", t0)}}},
		{deferAt, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(deferAt, "text", "sms", nudge.OutcomeDeferred, "quiet_hours",
				"SMS 'webinar-sms' deferred to 08:00 America/Chicago (quiet hours 21:00–08:00; zone from phone +1 312).",
				map[string]any{"until": sendAt, "zone": "America/Chicago", "zone_source": "phone", "window": "08:00–21:00"}),
		}}},
		{sendAt, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(sendAt, "text", "sms", nudge.OutcomeSent, "queued", "Sent SMS 'webinar-sms' (step text).",
				map[string]any{"template": "webinar-sms", "purpose": "reminder", "message_id": "m2"}),
		}, Messages: []*nudge.Message{m("m2", "text", "sms", "webinar-sms", "reminder", sendAt)}}},
	}
	for _, c := range commits {
		en.UpdatedAt = c.at
		c.c.Enrollments = []*nudge.Enrollment{en}
		if err := e.store.EngineCommit(ctx, c.c, c.at); err != nil {
			t.Fatal(err)
		}
	}
	return t0
}

func TestTimeline(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		t0 := seedTimeline(t, e)

		r := e.must(e.do("GET", "/v1/contacts/jane/timeline", e.read, nil), 200)
		entries := r.json["entries"].([]any)
		type row struct{ kind, step, what, reason string }
		var got []row
		for _, x := range entries {
			m := x.(map[string]any)
			what, _ := m["outcome"].(string)
			if m["kind"] == "message" {
				what = m["status"].(string)
			}
			step, _ := m["step"].(string)
			reason, _ := m["reason"].(string)
			got = append(got, row{m["kind"].(string), step, what, reason})
			if m["journey"] != "webinar-reminder" || m["version"].(float64) != 1 || m["message"] == "" || m["at"] == "" {
				t.Errorf("entry lacks its journey, version, sentence or time: %v", m)
			}
		}
		want := []row{
			{"decision", "", "entered", "entered_event"},
			{"decision", "confirm", "sent", "queued"},
			{"message", "confirm", "queued", ""},
			{"decision", "text", "deferred", "quiet_hours"},
			{"decision", "text", "sent", "queued"},
			{"message", "text", "queued", ""},
		}
		if len(got) != len(want) {
			t.Fatalf("entries:\n%v\nwant\n%v\n%s", got, want, r.body)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("entry %d: %v, want %v", i, got[i], want[i])
			}
		}
		deferred := entries[3].(map[string]any)
		if deferred["channel"] != "sms" || deferred["details"].(map[string]any)["zone"] != "America/Chicago" {
			t.Errorf("deferred entry: %v", deferred)
		}
		if sent := entries[4].(map[string]any); sent["message_id"] != "m2" || sent["template"] != "webinar-sms" {
			t.Errorf("sent entry: %v", sent)
		}

		// Filters.
		since := t0.Add(time.Hour).Format(time.RFC3339)
		r = e.must(e.do("GET", "/v1/contacts/jane/timeline?since="+since, e.read, nil), 200)
		if n := len(r.json["entries"].([]any)); n != 3 {
			t.Errorf("since: %d entries, want 3: %s", n, r.body)
		}
		r = e.must(e.do("GET", "/v1/contacts/jane/timeline?journey=other", e.read, nil), 200)
		if n := len(r.json["entries"].([]any)); n != 0 {
			t.Errorf("journey=other: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/contacts/jane/timeline?journey=webinar-reminder&limit=2", e.read, nil), 200)
		if n := len(r.json["entries"].([]any)); n != 2 || r.json["truncated"] != true || r.json["next_since"] == nil {
			t.Errorf("limit: %s", r.body)
		}
		e.must(e.do("GET", "/v1/contacts/nobody/timeline", e.read, nil), 404)
		for _, q := range []string{"?since=yesterday", "?limit=0", "?jorney=x"} {
			e.must(e.do("GET", "/v1/contacts/jane/timeline"+q, e.read, nil), 400)
		}
	})
}
