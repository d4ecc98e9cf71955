package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/sqlite"
)

// Message ids as the engine makes them: they share a long prefix.
const (
	msgEmail = "019cae9a2a0000000000000000000001a1b2c3d4"
	msgSMS   = "019cae9a2a0000000000000000000002a1b2c3d5"
)

// seedExplain writes, through EngineCommit, jane's pass through
// webinar-reminder v1: entered, an email sent, an SMS deferred by quiet
// hours, then sent; and a not_entered decision of another journey.
func seedExplain(t *testing.T, db string) time.Time {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "jane", Email: "jane@example.com", Phone: "+13125550100"}, t0); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../journey/testdata/webinar-reminder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"webinar-reminder", "newsletter"} {
		if _, _, err := s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: id, Name: id, Source: src}, t0); err != nil {
			t.Fatal(err)
		}
	}
	en := &nudge.Enrollment{ID: "en1", JourneyID: "webinar-reminder", Version: 1, ContactID: "jane", State: nudge.EnrollmentWaiting,
		StepID: "hour-before", WakeAt: t0.Add(48 * time.Hour), Steps: map[string]nudge.StepRecord{}}
	d := func(at time.Time, step, channel, outcome, reason, msg string, details map[string]any) *nudge.Decision {
		return &nudge.Decision{At: at, ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, EnrollmentID: "en1",
			StepID: step, Channel: channel, Outcome: outcome, Reason: reason, Message: msg, Details: details}
	}
	m := func(id, step, channel, template, purpose string, at time.Time) *nudge.Message {
		return &nudge.Message{ID: id, EnrollmentID: "en1", ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, StepID: step,
			Channel: channel, Template: template, Purpose: purpose, Status: nudge.MessageQueued, IdempotencyKey: "en1:" + step,
			AvailableAt: at, CreatedAt: at, UpdatedAt: at}
	}
	deferAt := t0.Add(7*time.Hour + 30*time.Minute) // 03:32 Chicago
	sendAt := time.Date(2026, 3, 3, 14, 9, 0, 0, time.UTC)
	commits := []struct {
		at time.Time
		c  *nudge.EngineCommit
	}{
		{t0, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(t0, "", "", nudge.OutcomeEntered, "entered_event", "Entered on webinar.registered.", nil),
			d(t0, "confirm", "email", nudge.OutcomeSent, "queued", "Sent email 'webinar-confirmation' (step confirm).",
				map[string]any{"template": "webinar-confirmation", "message_id": msgEmail}),
			{At: t0, ContactID: "jane", JourneyID: "newsletter", Version: 1, Outcome: nudge.OutcomeNotEntered, Reason: "entry_rule",
				Message: "Not entered: the entry rule is false."},
		}, Messages: []*nudge.Message{m(msgEmail, "confirm", "email", "webinar-confirmation", "", t0)}}},
		{deferAt, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(deferAt, "text", "sms", nudge.OutcomeDeferred, "quiet_hours",
				"SMS 'webinar-sms' deferred to 08:00 America/Chicago (quiet hours 21:00–08:00; zone from phone +1 312).",
				map[string]any{"until": sendAt, "zone": "America/Chicago", "zone_source": "phone", "phone_prefix": "+1 312",
					"window": "08:00–21:00", "local_time": "2026-03-02T15:32:00-06:00",
					"consent": map[string]any{"channel": "sms", "status": "opted_in", "source": "form"}}),
		}}},
		{sendAt, &nudge.EngineCommit{Decisions: []*nudge.Decision{
			d(sendAt, "text", "sms", nudge.OutcomeSent, "queued", "Sent SMS 'webinar-sms' (step text).",
				map[string]any{"template": "webinar-sms", "purpose": "reminder", "message_id": msgSMS, "zone": "America/Chicago"}),
		}, Messages: []*nudge.Message{m(msgSMS, "text", "sms", "webinar-sms", "reminder", sendAt)}}},
	}
	for _, c := range commits {
		c.c.Enrollments = []*nudge.Enrollment{en}
		if err := s.EngineCommit(ctx, c.c, c.at); err != nil {
			t.Fatal(err)
		}
	}
	return t0
}

func TestExplain(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	seedExplain(t, db)

	out, _, err := cli(t, "explain", "--db", db, "jane")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"jane: 7 decisions and messages, 2026-03-02 14:02 UTC to 2026-03-03 14:09 UTC",
		"\nwebinar-reminder v1 · enrollment en1\n",
		"\nnewsletter · not enrolled\n",
		"2026-03-02 21:32 UTC  webinar-reminder v1  text     SMS 'webinar-sms' deferred to 08:00 America/Chicago (quiet hours 21:00–08:00; zone from phone +1 312)  [deferred: quiet_hours]\n",
		"2026-03-03 14:09 UTC  webinar-reminder v1  text     SMS 'webinar-sms' is queued for delivery  [message " + msgSMS + "]\n",
		"2026-03-02 14:02 UTC  webinar-reminder v1  -        Entered on webinar.registered  [entered: entered_event]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	// Groups in the order they began; entries in time order within.
	if i, j := strings.Index(out, "enrollment en1"), strings.Index(out, "not enrolled"); i < 0 || j < i {
		t.Errorf("groups out of order:\n%s", out)
	}
	if i, j := strings.Index(out, "deferred: quiet_hours"), strings.Index(out, "Sent SMS"); j < i {
		t.Errorf("entries out of order:\n%s", out)
	}

	// Filters, a time zone, JSON.
	out, _, err = cli(t, "explain", "jane", "--db", db, "--journey", "webinar-reminder", "--since", "2026-03-03", "--tz", "America/Chicago")
	if err != nil || strings.Count(out, "\n  ") != 2 || !strings.Contains(out, "2026-03-03 08:09 CST") || strings.Contains(out, "newsletter") {
		t.Fatalf("filtered: %v\n%s", err, out)
	}
	out, _, err = cli(t, "explain", "--db", db, "--json", "jane")
	if err != nil {
		t.Fatal(err)
	}
	var tl struct {
		ContactID string `json:"contact_id"`
		Entries   []struct {
			Kind, Journey, Step, Outcome, Status, Reason, Message string
			Version                                               int64
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &tl); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if tl.ContactID != "jane" || len(tl.Entries) != 7 || tl.Entries[4].Reason != "quiet_hours" || tl.Entries[4].Kind != "decision" ||
		tl.Entries[6].Kind != "message" || tl.Entries[6].Status != "queued" || tl.Entries[6].Version != 1 {
		t.Errorf("JSON: %+v", tl)
	}

	// Mistakes.
	if _, _, err := cli(t, "explain", "--db", db, "nobody"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown contact: %v", err)
	}
	if _, _, err := cli(t, "explain", "--db", db, "jane", "--since", "last tuesday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad since: %v", err)
	}
	if _, _, err := cli(t, "explain", "--db", db); err != errUsage {
		t.Errorf("no contact: %v", err)
	}
}

func TestExplainMessage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	seedExplain(t, db)

	out, _, err := cli(t, "explain", "--db", db, "--message", msgSMS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"message " + msgSMS + ": SMS 'webinar-sms' is queued for delivery\n",
		"contact jane, webinar-reminder v1, step text, enrollment en1\n",
		"purpose reminder",
		"decisions of step text:",
		"2026-03-02 21:32 UTC  SMS 'webinar-sms' deferred to 08:00 America/Chicago",
		"checks: suppression passed · consent passed · SMS-allowed points passed · quiet hours and expiry FAILED · frequency caps not reached · priority not reached\n",
		"  consent.status: opted_in\n",
		"  zone_source: phone\n",
		"  until: 2026-03-03T14:09:00Z\n",
		"2026-03-03 14:09 UTC  Sent SMS 'webinar-sms' (step text)  [sent: queued]\n",
		"checks: suppression passed · consent passed · SMS-allowed points passed · quiet hours and expiry passed · frequency caps passed · priority passed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain --message lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "confirm") {
		t.Errorf("another step's decision shown:\n%s", out)
	}

	// The email has no policy details: no checks are made up.
	out, _, err = cli(t, "explain", "--db", db, "--message", msgEmail, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Message   struct{ ID, Kind, Status string }
		Decisions []struct {
			Reason string
			Checks []struct{ Rule, Result string }
		}
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if x.Message.ID != msgEmail || x.Message.Kind != "message" || len(x.Decisions) != 1 || x.Decisions[0].Reason != "queued" || len(x.Decisions[0].Checks) != 0 {
		t.Errorf("JSON: %+v", x)
	}

	if _, _, err := cli(t, "explain", "--db", db, "--message", msgSMS[:len(msgSMS)-1]+"f"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown message: %v", err)
	}
	if _, _, err := cli(t, "explain", "--db", db, "--message", msgSMS, "jane"); err == nil {
		t.Error("--message with a contact: no error")
	}
}
