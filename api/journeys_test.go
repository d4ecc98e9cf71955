package api_test

import (
	"os"
	"strings"
	"testing"
)

func webinarYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../journey/testdata/webinar-reminder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJourneys(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)
		src := webinarYAML(t)

		// Validate: read keys may, and nothing is stored.
		r := e.must(e.do("POST", "/v1/journeys/validate", e.read, src), 200)
		if r.json["valid"] != true || r.json["id"] != "webinar-reminder" {
			t.Fatalf("validate: %s", r.body)
		}
		bad := strings.Replace(src, "wait: {until: 'timestamp(event.properties.starts_at) - duration(\"24h\")'}", "wait: {for: 3 days}", 1)
		bad = strings.Replace(bad, "then: done", "then: dnoe", 1)
		r = e.must(e.do("POST", "/v1/journeys/validate", e.read, bad), 200)
		problems, _ := r.json["problems"].([]any)
		if r.json["valid"] != false || len(problems) != 2 {
			t.Fatalf("validate bad: %s", r.body)
		}
		p0 := problems[0].(map[string]any)
		if p0["line"].(float64) < 1 || p0["col"].(float64) < 1 || p0["message"] == "" {
			t.Errorf("problem without position: %v", p0)
		}
		e.must(e.do("POST", "/v1/journeys", e.read, src), 403)
		lr := e.must(e.do("GET", "/v1/journeys", e.read, nil), 200)
		if js := lr.json["journeys"].([]any); len(js) != 0 {
			t.Fatalf("validate stored something: %s", lr.body)
		}

		// An invalid file is never published, and the answer lists every problem.
		r = e.must(e.do("POST", "/v1/journeys", e.admin, bad), 400)
		if r.errField("code") != "invalid" || len(r.json["problems"].([]any)) != 2 {
			t.Fatalf("publish bad: %s", r.body)
		}
		e.must(e.do("GET", "/v1/journeys/webinar-reminder", e.read, nil), 404)

		// Publish, publish the same again, publish a change.
		r = e.must(e.do("POST", "/v1/journeys", e.admin, src), 201)
		if v := r.json["version"].(map[string]any); v["version"].(float64) != 1 || r.json["created"] != true {
			t.Fatalf("publish: %s", r.body)
		}
		r = e.must(e.do("POST", "/v1/journeys", e.admin, src), 200)
		if r.json["created"] != false {
			t.Fatalf("republish: %s", r.body)
		}
		src2 := strings.Replace(src, "holdout: 10", "holdout: 20", 1)
		r = e.must(e.do("POST", "/v1/journeys", e.admin, src2), 201)
		if j := r.json["journey"].(map[string]any); j["version"].(float64) != 2 || j["status"] != "active" || j["name"] != "Webinar reminder" {
			t.Fatalf("publish v2: %s", r.body)
		}

		r = e.must(e.do("GET", "/v1/journeys/webinar-reminder", e.read, nil), 200)
		if vs := r.json["versions"].([]any); len(vs) != 2 || r.json["id"] != "webinar-reminder" {
			t.Fatalf("get: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/journeys/webinar-reminder/versions/1", e.read, nil), 200)
		if r.json["source"] != src || r.json["version"].(float64) != 1 {
			t.Fatalf("version 1: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/journeys/webinar-reminder/versions/2?format=yaml", e.read, nil), 200)
		if string(r.body) != src2 {
			t.Fatalf("version 2 as YAML: %s", r.body)
		}
		e.must(e.do("GET", "/v1/journeys/webinar-reminder/versions/3", e.read, nil), 404)
		e.must(e.do("GET", "/v1/journeys/webinar-reminder/versions/x", e.read, nil), 400)

		// Pause, resume, archive; archived journeys leave the list.
		e.must(e.do("POST", "/v1/journeys/webinar-reminder/pause", e.read, nil), 403)
		r = e.must(e.do("POST", "/v1/journeys/webinar-reminder/pause", e.admin, nil), 200)
		if r.json["status"] != "paused" {
			t.Fatalf("pause: %s", r.body)
		}
		r = e.must(e.do("POST", "/v1/journeys/webinar-reminder/resume", e.admin, nil), 200)
		if r.json["status"] != "active" {
			t.Fatalf("resume: %s", r.body)
		}
		r = e.must(e.do("POST", "/v1/journeys/webinar-reminder/archive", e.admin, nil), 200)
		if r.json["status"] != "archived" {
			t.Fatalf("archive: %s", r.body)
		}
		e.must(e.do("POST", "/v1/journeys/webinar-reminder/resume", e.admin, nil), 409)
		e.must(e.do("POST", "/v1/journeys/nope/pause", e.admin, nil), 404)
		lr = e.must(e.do("GET", "/v1/journeys", e.read, nil), 200)
		if js := lr.json["journeys"].([]any); len(js) != 0 {
			t.Fatalf("archived journey listed: %s", lr.body)
		}
		lr = e.must(e.do("GET", "/v1/journeys?status=archived", e.read, nil), 200)
		if js := lr.json["journeys"].([]any); len(js) != 1 {
			t.Fatalf("archived journey not listed with status=archived: %s", lr.body)
		}
		e.must(e.do("GET", "/v1/journeys?status=gone", e.read, nil), 400)

		// Publishing an archived journey makes it active again.
		r = e.must(e.do("POST", "/v1/journeys", e.admin, src2), 200)
		if j := r.json["journey"].(map[string]any); j["status"] != "active" {
			t.Fatalf("republish archived: %s", r.body)
		}

		e.must(e.do("POST", "/v1/journeys", e.admin, ""), 400)
	})
}
