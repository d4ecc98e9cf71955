package api_test

import (
	"testing"
	"time"
)

func TestReports(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		e.must(e.do("POST", "/v1/journeys", e.admin, webinarYAML(t)), 201)

		r := e.must(e.do("GET", "/v1/reports/journeys/webinar-reminder?from=2026-01-01&to=2026-12-31T00:00:00Z&version=1", e.read, nil), 200)
		if r.json["journey_id"] != "webinar-reminder" || r.json["entered"] != float64(0) {
			t.Errorf("journey report: %s", r.body)
		}
		if f := r.json["funnel"].([]any); len(f) == 0 || f[0].(map[string]any)["step_id"] != "confirm" {
			t.Errorf("funnel: %s", r.body)
		}
		e.must(e.do("GET", "/v1/reports/journeys/nope", e.read, nil), 404)
		if r := e.must(e.do("GET", "/v1/reports/journeys/webinar-reminder?from=yesterday", e.read, nil), 400); r.errField("field") != "from" {
			t.Errorf("bad from: %s", r.body)
		}
		e.must(e.do("GET", "/v1/reports/journeys/webinar-reminder?from=2026-02-01&to=2026-01-01", e.read, nil), 400)
		r = e.must(e.do("GET", "/v1/reports/overview", e.read, nil), 200)
		if js := r.json["journeys"].([]any); len(js) != 1 {
			t.Errorf("overview: %s", r.body)
		}
		e.must(e.do("GET", "/v1/reports/overview", "", nil), 401)

		// A contact's stage history: the PATCH made it a customer.
		e.must(e.do("PUT", "/v1/contacts/u-1", e.admin, map[string]any{"lifecycle_stage": "lead"}), 201)
		e.clock.Advance(time.Hour)
		e.must(e.do("PATCH", "/v1/contacts/u-1", e.admin, map[string]any{"lifecycle_stage": "customer"}), 200)
		r = e.must(e.do("GET", "/v1/contacts/u-1/stages", e.read, nil), 200)
		cs, _ := r.json["changes"].([]any)
		if len(cs) != 2 || cs[1].(map[string]any)["from"] != "lead" || cs[1].(map[string]any)["to"] != "customer" || cs[1].(map[string]any)["source"] != "api" {
			t.Errorf("stages: %s", r.body)
		}
		e.must(e.do("GET", "/v1/contacts/nobody/stages", e.read, nil), 404)
	})
}
