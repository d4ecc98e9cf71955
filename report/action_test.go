package report_test

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/report"
)

// TestTimeToActionAndEmailHealth: time from each message to its click and
// to the goal, and email complaint and unsubscribe rates, from the counts.
func TestTimeToActionAndEmailHealth(t *testing.T) {
	j, err := journey.Parse("j.yaml", []byte("id: j\ntrigger: {event: go}\ngoal: {event: done}\nsteps:\n  - id: hello\n    email: {template: hello}\n  - id: text\n    sms: {template: t, purpose: reminder}\n"), journey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &nudge.ReportData{
		Actions: []nudge.ReportAction{{StepID: "hello", Channel: "email", Name: "email.complained", Messages: 1}},
		OptOuts: []nudge.ReportOptOut{{StepID: "hello", Channel: "email", Sent: 200, OptedOut: 4}, {StepID: "text", Channel: "sms", Sent: 50, OptedOut: 1}},
		ActionDelays: []nudge.ReportActionDelay{{StepID: "hello", Channel: "email", Action: "click", Minutes: 10, Count: 3},
			{StepID: "hello", Channel: "email", Action: "click", Minutes: 120, Count: 1}},
		Conversions: []nudge.ReportConversion{
			{EnteredAt: t0, ConvertedAt: t0.Add(5 * time.Hour), Touches: []nudge.ReportTouch{
				{StepID: "hello", Channel: "email", At: t0}, {StepID: "text", Channel: "sms", At: t0.Add(4 * time.Hour)}}},
			{EnteredAt: t0, ConvertedAt: t0.Add(time.Hour), Touches: []nudge.ReportTouch{
				{StepID: "hello", Channel: "email", At: t0}, {StepID: "text", Channel: "sms", At: t0.Add(2 * time.Hour)}}}, // after the goal: not counted
		},
	}
	r := report.Build(j, d, report.Options{})
	want := []report.ActionTime{
		{StepID: "hello", Channel: "email", Action: "click", Spread: report.Spread{Count: 4, Median: 600, P75: 600, P90: 7200}},
		{StepID: "hello", Channel: "email", Action: "goal", Spread: report.Spread{Count: 2, Median: 3600, P75: 18000, P90: 18000}},
		{StepID: "text", Channel: "sms", Action: "goal", Spread: report.Spread{Count: 1, Median: 3600, P75: 3600, P90: 3600}},
	}
	if len(r.TimeToAction) != len(want) {
		t.Fatalf("TimeToAction = %+v, want %+v", r.TimeToAction, want)
	}
	for i := range want {
		if r.TimeToAction[i] != want[i] {
			t.Errorf("TimeToAction[%d] = %+v, want %+v", i, r.TimeToAction[i], want[i])
		}
	}
	if r.EmailSent != 200 || r.EmailComplained != 1 || r.EmailUnsubscribed != 4 || r.ComplaintRate != 0.005 || r.UnsubscribeRate != 0.02 {
		t.Errorf("email health: sent %d, complained %d (%v), unsubscribed %d (%v)", r.EmailSent, r.EmailComplained, r.ComplaintRate, r.EmailUnsubscribed, r.UnsubscribeRate)
	}
	if r.SMSSent != 50 || r.SMSOptedOut != 1 || len(r.OptOuts) != 1 || r.OptOuts[0].StepID != "text" {
		t.Errorf("SMS opt-outs mixed with email: sent %d, opted out %d, per step %+v", r.SMSSent, r.SMSOptedOut, r.OptOuts)
	}
	if f := r.Funnel[0]; f.StepID != "hello" || f.Complained != 1 || f.Unsubscribed != 4 || f.OptedOut != 0 {
		t.Errorf("funnel hello = %+v", f)
	}
}
