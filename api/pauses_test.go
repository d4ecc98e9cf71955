package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// TestStepPauses: a step paused on its opt-out rate shows in the journey
// and its report, and an admin (not a reader) resumes it, once.
func TestStepPauses(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("POST", "/v1/journeys", e.admin, webinarYAML(t)), 201)
		pausedAt := e.clock.Now().Add(-time.Hour)
		if ok, err := e.store.StepPausePut(context.Background(), &nudge.StepPause{JourneyID: "webinar-reminder", StepID: "text",
			Reason: "step_paused_optout_rate", Sent: 200, OptedOut: 5, Rate: 0.025, Threshold: 0.02, MinSends: 200,
			Since: pausedAt.Add(-24 * time.Hour), PausedAt: pausedAt}); !ok || err != nil {
			t.Fatalf("StepPausePut = %v, %v", ok, err)
		}
		r := e.must(e.do("GET", "/v1/journeys/webinar-reminder", e.read, nil), 200)
		ps, _ := r.json["paused_steps"].([]any)
		if len(ps) != 1 || ps[0].(map[string]any)["step_id"] != "text" || ps[0].(map[string]any)["opted_out"] != float64(5) {
			t.Fatalf("journey's paused_steps: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/reports/journeys/webinar-reminder", e.read, nil), 200)
		if ps, _ := r.json["paused_steps"].([]any); len(ps) != 1 {
			t.Errorf("report's paused_steps: %s", r.body)
		}
		e.must(e.do("POST", "/v1/journeys/webinar-reminder/steps/text/resume", e.read, nil), 403)
		r = e.must(e.do("POST", "/v1/journeys/webinar-reminder/steps/text/resume", e.admin, nil), 200)
		if r.json["resumed_at"] != e.clock.Now().Format(time.RFC3339) || r.json["resumed_by"] == "" {
			t.Errorf("resume: %s", r.body)
		}
		if r := e.must(e.do("POST", "/v1/journeys/webinar-reminder/steps/text/resume", e.admin, nil), 404); r.errField("code") != nudge.ENOTFOUND {
			t.Errorf("second resume: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/journeys/webinar-reminder", e.read, nil), 200)
		if ps, _ := r.json["paused_steps"].([]any); len(ps) != 0 {
			t.Errorf("paused_steps after resume: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/journeys/webinar-reminder/pauses?all=true", e.read, nil), 200)
		if ps, _ := r.json["pauses"].([]any); len(ps) != 1 || ps[0].(map[string]any)["resumed_at"] == nil {
			t.Errorf("pause history: %s", r.body)
		}
		e.must(e.do("GET", "/v1/journeys/nope/pauses", e.read, nil), 404)
	})
}
