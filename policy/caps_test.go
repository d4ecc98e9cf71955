package policy

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// TestCalendarCapInEveryZone: a +1 208 number may be in Boise or in Los
// Angeles. Just after midnight in Boise it is still yesterday in Los
// Angeles, where yesterday's email already filled the one-per-day cap: the
// cap is full, and frees at midnight in Los Angeles, the later of the two.
func TestCalendarCapInEveryZone(t *testing.T) {
	boise, la := mustLoc(t, "America/Boise"), mustLoc(t, "America/Los_Angeles")
	sentAt := time.Date(2026, 3, 2, 23, 30, 0, 0, boise)
	at := time.Date(2026, 3, 3, 0, 30, 0, 0, boise) // 23:30 on 2 March in Los Angeles
	cap := Cap{Channel: nudge.ChannelEmail, Limit: 1, Days: 1}
	f := facts()
	f.Channel, f.Purpose = nudge.ChannelEmail, ""
	f.Contact.Phone = "+12085550100"
	f.Consent = []*nudge.ConsentState{optedIn(nudge.ChannelEmail)}
	f.Recent = []Sent{{ID: "m1", At: sentAt, Channel: nudge.ChannelEmail, Journey: "welcome", Template: "welcome-1"}}

	for _, tc := range []struct {
		name    string
		onCap   string
		outcome string
		until   time.Time
	}{
		{"skip", OnCapSkip, nudge.OutcomeSkipped, time.Time{}},
		{"defer", OnCapDefer, nudge.OutcomeDeferred, time.Date(2026, 3, 3, 0, 0, 0, 0, la)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := noJitter()
			p.Caps = []Cap{cap}
			p.OnCap = tc.onCap
			d := p.Evaluate(f, at)
			if d.Outcome != tc.outcome || d.Reason != cap.Reason() || !d.Until.Equal(tc.until) {
				t.Fatalf("Evaluate = %s %s until %v (%s); want %s %s until %v",
					d.Outcome, d.Reason, d.Until, d.Sentence, tc.outcome, cap.Reason(), tc.until)
			}
		})
	}

	t.Run("one zone", func(t *testing.T) {
		// With the contact's own zone, Boise, the day is new: allowed.
		p := noJitter()
		p.Caps = []Cap{cap}
		g := *f
		c := *f.Contact
		c.Timezone = "America/Boise"
		g.Contact = &c
		if d := p.Evaluate(&g, at); d.Outcome != nudge.OutcomeSent {
			t.Fatalf("Evaluate = %s %s (%s); want sent", d.Outcome, d.Reason, d.Sentence)
		}
	})
}
