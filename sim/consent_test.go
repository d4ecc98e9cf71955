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

// A contact's consent read for one batch is not what a later batch sees
// after it changed: ten registrants opted in to SMS, read when they
// register; then five reply STOP and five change their phone number (whose
// consent is unknown) before the reminder text, and none is texted. The
// five who change their number are read again after the STOPs (a page
// view), so that only their change can make their consent read again.
func TestConsentChangesMidReplay(t *testing.T) {
	var csv, tl strings.Builder
	csv.WriteString("id,email,phone,timezone,lifecycle_stage,sms_consent\n")
	add := func(format string, args ...any) { fmt.Fprintf(&tl, format+"\n", args...) }
	for i := range 10 {
		id := fmt.Sprintf("c-%d", i)
		fmt.Fprintf(&csv, "%s,%s@example.com,+1415555%04d,America/New_York,lead,opted_in\n", id, id, i)
		add(`{"type":"track","userId":%q,"event":"webinar.registered","timestamp":"2026-03-02T15:00:00Z","properties":{"webinar_id":"w-1","starts_at":"2026-03-05T17:00:00Z"}}`, id)
		if i < 5 {
			add(`{"type":"track","userId":%q,"event":"sms.replied","timestamp":"2026-03-03T12:00:00Z","properties":{"body":"STOP"}}`, id)
		} else {
			add(`{"type":"track","userId":%q,"event":"page.viewed","timestamp":"2026-03-03T18:00:00Z"}`, id)
			add(`{"type":"identify","userId":%q,"timestamp":"2026-03-04T12:00:00Z","traits":{"phone":"+1415666%04d"}}`, id, i)
		}
	}
	norm := &ingest.ContactNormalizer{DefaultRegion: "US"}
	events, err := sim.ReadTimeline("timeline.jsonl", strings.NewReader(tl.String()), norm)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sim.Run(context.Background(), sim.Config{
		Journeys: []*journey.Journey{webinarJourney(t)}, Contacts: strings.NewReader(csv.String()), Events: events,
		Normalizer: norm, Dir: t.TempDir(), To: time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Totals.Messages["sms"]; n != 0 {
		t.Errorf("%d texts sent; want none: every registrant's SMS consent changed before the reminder", n)
	}
	if n := r.Totals.Messages["email"]; n == 0 {
		t.Error("no email sent: the registrants were not enrolled")
	}
	skipped := 0
	for _, c := range r.Contacts {
		for _, d := range c.Decisions {
			if d.StepID == "text" && d.Reason == "no_consent_sms" {
				skipped++
			}
		}
	}
	if skipped == 0 {
		t.Error("no text skipped for no_consent_sms")
	}
}
