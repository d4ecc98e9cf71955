package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimulateCommand(t *testing.T) {
	ex := "../../examples/webinar/"
	args := []string{"simulate", "--journey", ex + "journey.yaml", "--contacts", ex + "contacts.csv", "--events", ex + "timeline.jsonl"}
	out1, errOut, err := cli(t, args...)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"journey webinar-reminder v1",
		"Thu 2026-03-05 16:00  webinar-reminder  text (sms)        sent",
		"messages: email 14, sms 3",
		"skipped   no_consent_sms  1",
	} {
		if !strings.Contains(out1, want) {
			t.Errorf("output lacks %q:\n%s", want, out1)
		}
	}
	// The same input gives the same output, byte for byte.
	out2, _, err := cli(t, args...)
	if err != nil || out2 != out1 {
		t.Errorf("second run differs (err %v)", err)
	}

	js1, _, err := cli(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(js1), &doc); err != nil {
		t.Fatalf("--json output is not JSON: %v", err)
	}
	if _, ok := doc["totals"]; !ok {
		t.Errorf("--json lacks totals: %s", js1)
	}
	js2, _, _ := cli(t, append(args, "--json")...)
	if js1 != js2 {
		t.Error("--json output differs between runs")
	}

	sum, _, err := cli(t, append(args, "--summary", "--from", "2026-03-03", "--to", "2026-03-05T12:00:00Z")...)
	if err != nil || strings.Contains(sum, "w-ana\n") || !strings.Contains(sum, "4 outside the window") {
		t.Errorf("--summary with a window: %v\n%s", err, sum)
	}

	// A journey with problems is reported, not simulated.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "id: x\ntrigger: {event: a}\nsteps:\n  - id: w\n    wait: {for: soon}\n")
	_, errOut, err = cli(t, "simulate", "--journey", bad, "--events", ex+"timeline.jsonl")
	if err == nil || !strings.Contains(errOut, bad+":5:") {
		t.Errorf("bad journey: %v\n%s", err, errOut)
	}
}

func TestDemo(t *testing.T) {
	out, errOut, err := cli(t, "demo", "--dir", "../../examples")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut)
	}
	for _, want := range []string{"1. Webinar reminder", "2. Stalled high-intent prospect", "3. New-customer onboarding", "4. Time-sensitive renewal", "Summary"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if errOut != "" {
		t.Errorf("demo wrote to stderr:\n%s", errOut)
	}
	if _, _, err := cli(t, "demo", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "repository's root") {
		t.Errorf("demo without examples: %v", err)
	}
}

// --policy simulates under a policy file instead of the shipped default,
// read as nudge policy validate reads it.
func TestSimulatePolicy(t *testing.T) {
	ex := "../../examples/webinar/"
	args := []string{"simulate", "--journey", ex + "journey.yaml", "--contacts", ex + "contacts.csv", "--events", ex + "timeline.jsonl", "--summary"}
	// The example policy wants marketing email opted in, which none of
	// the webinar's contacts is: nothing goes out.
	out, errOut, err := cli(t, append(args, "--policy", "../../examples/policy.yaml")...)
	if err != nil {
		t.Fatalf("simulate --policy: %v\n%s", err, errOut)
	}
	for _, want := range []string{"messages: none", "skipped   no_consent_email  14"} {
		if !strings.Contains(out, want) {
			t.Errorf("output under examples/policy.yaml lacks %q:\n%s", want, out)
		}
	}
	if def, _, err := cli(t, args...); err != nil || !strings.Contains(def, "messages: email 14, sms 3") {
		t.Errorf("without --policy (the default policy): %v\n%s", err, def)
	}

	// A policy with a problem is reported where it is, and nothing is simulated.
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, bad, "timezone: America/Chicago\njitter: soon\n")
	out, errOut, err = cli(t, append(args, "--policy", bad)...)
	if err == nil || !strings.Contains(errOut, bad+":2:") || strings.Contains(out, "messages") {
		t.Errorf("bad policy: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}
