package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestReportCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	seedExplain(t, db)

	out, _, err := cli(t, "report", "--db", db, "webinar-reminder")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Journey webinar-reminder", "FUNNEL", "Entered 1 (held out 0)",
		"no holdout", "CRM MOVEMENT (after entry)\n", "TIME TO NEXT ACTION", "email sent 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out, _, err = cli(t, "report", "--db", db, "--csv", "webinar-reminder")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "section,step,metric,value\njourney,,entered,1\n") || !strings.Contains(out, "journey,,sms_sent,1\n") {
		t.Errorf("CSV:\n%s", out)
	}
	out, _, err = cli(t, "report", "--db", db, "--overview", "--csv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\nwebinar-reminder,1,0,0,0,1,0,") {
		t.Errorf("overview CSV:\n%s", out)
	}
	if _, _, err := cli(t, "report", "--db", db, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("report of an unknown journey: %v, want not found", err)
	}
}

func TestSimulateReport(t *testing.T) {
	out, _, err := cli(t, "simulate", "--summary", "--report", "--journey", "../../examples/webinar/journey.yaml",
		"--contacts", "../../examples/webinar/contacts.csv", "--events", "../../examples/webinar/timeline.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nREPORT\nJourney webinar-reminder", "Entered 8 (held out 1); converted 2", "FUNNEL"} {
		if !strings.Contains(out, want) {
			t.Errorf("simulate --report lacks %q:\n%s", want, out)
		}
	}
	// The two who joined had their confirmation and reminder before they
	// converted: the funnel counts them sent (7 of the 7 treated), as the
	// decisions do, not cancelled by the conversion.
	for _, want := range []string{`(?m)^confirm\s+email\s+8\s+100\.0%\s+7\s`, `(?m)^reminder\s+email\s+8\s+100\.0%\s+7\s`,
		`(?m)^text\s+sms\s+7\s+87\.5%\s+3\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("simulate --report's funnel does not match %s:\n%s", want, out)
		}
	}
}
