package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func TestOptOutPauseParse(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      OptOutPause
		problem   string // in the error, with its line
	}{
		{"default", "timezone: America/Chicago\n", OptOutPause{Rate: 0.02, MinSends: 200, Over: 30 * 24 * time.Hour}, ""},
		{"percent", "opt_out_pause: {rate: 1.5%, min_sends: 500, over: 7d}\n", OptOutPause{Rate: 0.015, MinSends: 500, Over: 7 * 24 * time.Hour}, ""},
		{"fraction", "opt_out_pause:\n  rate: 0.03\n", OptOutPause{Rate: 0.03, MinSends: 200, Over: 30 * 24 * time.Hour}, ""},
		{"off", "opt_out_pause: false\n", OptOutPause{Off: true, Rate: 0.02, MinSends: 200, Over: 30 * 24 * time.Hour}, ""},
		{"bad rate", "opt_out_pause:\n  rate: 120%\n", OptOutPause{}, `policy.yaml:2:9: opt_out_pause: rate "120%" is not a rate`},
		{"bad field", "opt_out_pause:\n  threshold: 2%\n", OptOutPause{}, "policy.yaml:2:3"},
		{"bad min", "opt_out_pause:\n  min_sends: 0\n", OptOutPause{}, "policy.yaml:2:14: opt_out_pause: min_sends must be a whole number from 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(c.src))
			if c.problem != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.problem) {
					t.Fatalf("Parse = %v; want a problem with %q", err, c.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.OptOutPause != c.want {
				t.Errorf("OptOutPause = %+v, want %+v", p.OptOutPause, c.want)
			}
		})
	}
}

func TestOptOutPauseCrossed(t *testing.T) {
	o := Default().OptOutPause
	for _, c := range []struct {
		sent, out int64
		want      bool
	}{{200, 4, false}, {200, 5, true}, {199, 50, false}, {1000, 20, false}, {1000, 21, true}, {0, 0, false}} {
		if got := o.Crossed(c.sent, c.out); got != c.want {
			t.Errorf("Crossed(%d sent, %d opted out) = %v, want %v", c.sent, c.out, got, c.want)
		}
	}
	o.Off = true
	if o.Crossed(200, 100) {
		t.Error("Crossed with the pause off = true")
	}
}

func TestEvaluatePausedStep(t *testing.T) {
	p := Default()
	f := facts()
	pause := &nudge.StepPause{JourneyID: "remind", StepID: "text", Sent: 200, OptedOut: 5, Rate: 0.025, Threshold: 0.02, PausedAt: now.Add(-time.Hour)}
	f.Paused = pause
	d := p.Evaluate(f, now)
	if d.Outcome != nudge.OutcomeSkipped || d.Reason != ReasonStepPausedOptOutRate {
		t.Fatalf("Evaluate = %s %s (%s); want skipped %s", d.Outcome, d.Reason, d.Sentence, ReasonStepPausedOptOutRate)
	}
	for _, s := range []string{"step text of journey remind is paused", "5 of its 200 texts (2.5%)", "2.0% limit", "An admin resumes it"} {
		if !strings.Contains(d.Sentence, s) {
			t.Errorf("sentence %q does not say %q", d.Sentence, s)
		}
	}
	if got := d.Details()["paused"]; got == nil {
		t.Error("details do not name the pause")
	}
	// A contact who opted out reads as opted out, paused or not.
	f.Consent = []*nudge.ConsentState{{Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword}}
	if d := p.Evaluate(f, now); d.Reason != ReasonOptedOut {
		t.Errorf("opted out and paused: reason %s, want %s", d.Reason, ReasonOptedOut)
	}
	// A resumed pause does not hold.
	f = facts()
	resumed := *pause
	resumed.ResumedAt = now
	f.Paused = &resumed
	if d := p.Evaluate(f, now); !d.Allowed() {
		t.Errorf("resumed pause: %s %s, want allowed", d.Outcome, d.Reason)
	}
}
