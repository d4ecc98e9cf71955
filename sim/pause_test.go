package sim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/sim"
)

// TestOptOutPause: 300 registrants of one webinar get its reminder text
// (but the journey's holdout), and 15 of them reply STOP within a day:
// over 2% of at least 200 texts.
// The guardrail pauses the SMS step, so the registrants of a later webinar
// are not texted (step_paused_optout_rate), while their emails still go.
func TestOptOutPause(t *testing.T) {
	j := webinarJourney(t)
	var csv, tl strings.Builder
	csv.WriteString("id,email,phone,timezone,lifecycle_stage,sms_consent\n")
	add := func(format string, args ...any) { fmt.Fprintf(&tl, format+"\n", args...) }
	register := func(id, webinar, at, starts string) {
		add(`{"type":"track","userId":%q,"event":"webinar.registered","timestamp":%q,"properties":{"webinar_id":%q,"starts_at":%q}}`, id, at, webinar, starts)
	}
	for i := range 320 {
		id := fmt.Sprintf("c-%03d", i)
		fmt.Fprintf(&csv, "%s,%s@example.com,+1415555%04d,America/New_York,lead,opted_in\n", id, id, i)
		if i < 300 {
			register(id, "w-1", "2026-03-02T15:00:00Z", "2026-03-05T17:00:00Z") // texted at 16:00 UTC on the 5th
		} else {
			register(id, "w-2", "2026-03-06T15:00:00Z", "2026-03-09T17:00:00Z")
		}
	}
	// STOP (or "Stop.") from 15 registrants, 30 minutes after the text;
	// "thanks" is only a reply.
	for i := range 15 {
		body := "STOP"
		if i%2 == 1 {
			body = "Stop."
		}
		add(`{"type":"track","userId":"c-%03d","event":"sms.replied","timestamp":"2026-03-05T16:30:00Z","properties":{"body":%q}}`, i, body)
	}
	add(`{"type":"track","userId":"c-100","event":"sms.replied","timestamp":"2026-03-05T16:30:00Z","properties":{"body":"thanks"}}`)

	norm := &ingest.ContactNormalizer{DefaultRegion: "US"}
	events, err := sim.ReadTimeline("timeline.jsonl", strings.NewReader(tl.String()), norm)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sim.Run(context.Background(), sim.Config{
		Journeys: []*journey.Journey{j}, Contacts: strings.NewReader(csv.String()), Events: events, Normalizer: norm,
		Dir: t.TempDir(), To: time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Paused) != 1 {
		t.Fatalf("paused steps = %+v, want the webinar's text", r.Paused)
	}
	p := r.Paused[0]
	if p.JourneyID != "webinar-reminder" || p.StepID != "text" {
		t.Errorf("paused %s/%s, want webinar-reminder/text", p.JourneyID, p.StepID)
	}
	// The held-out registrants among the 15 were not texted: their STOP
	// follows no text of the step.
	if p.Sent < 200 || p.OptedOut > 15 || 50*p.OptedOut <= p.Sent {
		t.Errorf("pause counted %d opt-outs of %d texts, want over 2%% of at least 200, at most 15", p.OptedOut, p.Sent)
	}
	if want := time.Date(2026, 3, 5, 16, 30, 0, 0, time.UTC); !p.At.After(want) || p.At.After(want.Add(24*time.Hour)) {
		t.Errorf("paused at %s, want at the first moment after the STOPs at %s", p.At, want)
	}

	c := check{t, r}
	texted, paused := 0, 0
	for i := range 320 {
		id := fmt.Sprintf("c-%03d", i)
		if heldOut(c, id) {
			continue
		}
		switch {
		case i < 300:
			if c.find(id, "text", "sent") != nil {
				texted++
			}
		default:
			c.got(id, "reminder", "sent", "")
			if d := c.find(id, "text", "skipped"); d != nil && d.Reason == "step_paused_optout_rate" {
				paused++
			} else {
				c.t.Errorf("%s: the text of the second webinar was not skipped for the pause; decisions:\n%s", id, c.dump(id))
			}
		}
	}
	if texted < 200 {
		t.Errorf("%d registrants of the first webinar texted, want at least 200", texted)
	}
	if paused == 0 {
		t.Error("no text skipped for the pause")
	}
	var text strings.Builder
	if err := r.WriteText(&text, true); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("webinar-reminder  text  %d of %d texts followed by an opt-out", p.OptedOut, p.Sent); !strings.Contains(text.String(), want) {
		t.Errorf("the text report does not show the pause:\n%s", text.String())
	}
}

// heldOut reports whether the contact was in the journey's holdout.
func heldOut(c check, contact string) bool {
	for _, d := range c.decisions(contact) {
		if d.Outcome == "held_out" {
			return true
		}
	}
	return false
}
