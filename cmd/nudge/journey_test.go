package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs a command line and returns its stdout, stderr and error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const testJourney = `id: hello
name: Hello
trigger:
  event: signed.up
steps:
  - id: welcome
    email: {template: welcome}
  - id: pause
    wait: {for: 1d}
  - id: text
    sms: {template: hello, purpose: onboarding}
`

func TestJourneyValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.yaml")
	writeFile(t, file, testJourney)

	// No templates folder: valid, with a note that templates were not checked.
	out, errOut, err := cli(t, "journey", "validate", file)
	if err != nil || !strings.Contains(out, "hello.yaml: ok (hello, 3 steps)") || !strings.Contains(errOut, "templates not checked") {
		t.Fatalf("validate: %v\n%s\n%s", err, out, errOut)
	}

	// With a templates folder, a missing template is a problem at its line.
	writeFile(t, filepath.Join(dir, "templates", "welcome.email.liquid"), "Hi {{ contact.email }}")
	out, errOut, err = cli(t, "journey", "validate", file)
	if err == nil || !strings.Contains(errOut, file+":11:") || !strings.Contains(errOut, "hello") {
		t.Fatalf("missing sms template not reported: %v\n%s\n%s", err, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "templates", "hello.sms.liquid"), "Hi!")
	if out, errOut, err = cli(t, "journey", "validate", file); err != nil {
		t.Fatalf("validate with templates: %v\n%s\n%s", err, out, errOut)
	}

	// Every problem of every file, file:line:col, and a non-zero exit.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, strings.NewReplacer("1d", "one day", "purpose: onboarding", "purpose: chat").Replace(testJourney))
	_, errOut, err = cli(t, "journey", "validate", file, bad)
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(errOut, bad+":"); n != 2 {
		t.Errorf("want 2 problems of bad.yaml, got %d:\n%s", n, errOut)
	}
	if !strings.Contains(errOut, bad+":9:") || !strings.Contains(errOut, bad+":11:") {
		t.Errorf("problems lack their lines:\n%s", errOut)
	}

	// The examples all validate, templates included.
	files, _ := filepath.Glob("../../examples/*/journey.yaml")
	if len(files) > 0 {
		if out, errOut, err := cli(t, append([]string{"journey", "validate"}, files...)...); err != nil || strings.Contains(errOut, "not checked") {
			t.Errorf("examples: %v\n%s\n%s", err, out, errOut)
		}
	}
}

func TestJourneyCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nudge.db")
	file := filepath.Join(dir, "hello.yaml")
	writeFile(t, file, testJourney)

	out, _, err := cli(t, "journey", "publish", "--db", db, file)
	if err != nil || out != "published hello v1\n" {
		t.Fatalf("publish: %v %q", err, out)
	}
	out, _, err = cli(t, "journey", "publish", "--db", db, file)
	if err != nil || out != "hello unchanged (v1)\n" {
		t.Fatalf("publish again: %v %q", err, out)
	}
	// An invalid file is never published, nor are the valid files with it.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, strings.Replace(strings.Replace(testJourney, "id: hello", "id: other", 1), "1d", "1 day", 1))
	writeFile(t, file, strings.Replace(testJourney, "for: 1d", "for: 2d", 1))
	if out, _, err = cli(t, "journey", "publish", "--db", db, file, bad); err == nil || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("publish bad: %v %q", err, out)
	}
	twin := filepath.Join(dir, "twin.yaml")
	writeFile(t, twin, testJourney)
	if _, errOut, err := cli(t, "journey", "publish", "--db", db, file, twin); err == nil || !strings.Contains(errOut, "also the id of") {
		t.Fatalf("two files with one id: %v\n%s", err, errOut)
	}
	out, _, err = cli(t, "journey", "publish", "--db", db, file)
	if err != nil || out != "published hello v2\n" {
		t.Fatalf("publish v2: %v %q", err, out)
	}

	out, _, err = cli(t, "journey", "list", "--db", db)
	if err != nil || !strings.Contains(out, "ID") || !strings.Contains(out, "hello") || !strings.Contains(out, "active") || !strings.Contains(out, "v2") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	out, _, err = cli(t, "journey", "diff", "--db", db, "hello")
	if err != nil || !strings.Contains(out, "--- hello v1") || !strings.Contains(out, "+++ hello v2") ||
		!strings.Contains(out, "-    wait: {for: 1d}\n+    wait: {for: 2d}\n") || !strings.Contains(out, "@@ -6,6 +6,6 @@") {
		t.Fatalf("diff: %v\n%s", err, out)
	}
	if out, _, err = cli(t, "journey", "diff", "--db", db, "hello", "2", "2"); err != nil || !strings.Contains(out, "the same") {
		t.Fatalf("diff same: %v\n%s", err, out)
	}
	if _, _, err = cli(t, "journey", "diff", "--db", db, "hello", "7"); err == nil {
		t.Fatal("diff of an unknown version did not fail")
	}

	for _, c := range []struct{ cmd, want string }{
		{"pause", "hello is paused (v2)\n"},
		{"resume", "hello is active (v2)\n"},
		{"archive", "hello is archived (v2)\n"},
	} {
		out, _, err = cli(t, "journey", c.cmd, "--db", db, "hello")
		if err != nil || out != c.want {
			t.Fatalf("%s: %v %q", c.cmd, err, out)
		}
	}
	if _, _, err = cli(t, "journey", "resume", "--db", db, "hello"); err == nil || !strings.Contains(err.Error(), "archived") {
		t.Fatalf("resume archived: %v", err)
	}
	if out, _, _ = cli(t, "journey", "list", "--db", db); strings.Contains(out, "hello") {
		t.Errorf("archived journey listed:\n%s", out)
	}
	if out, _, _ = cli(t, "journey", "list", "--db", db, "--all"); !strings.Contains(out, "archived") {
		t.Errorf("list --all leaves out the archived journey:\n%s", out)
	}
	if _, _, err = cli(t, "journey", "pause", "--db", db, "nope"); err == nil {
		t.Error("pausing an unknown journey did not fail")
	}

	out, _, err = cli(t, "journey", "schema")
	if err != nil || !json.Valid([]byte(out)) {
		t.Fatalf("schema: %v", err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	for _, c := range []struct{ name, a, b, want string }{
		{"equal", "x\n", "x\n", ""},
		{"append", "a\nb\n", "a\nb\nc\n", "--- A\n+++ B\n@@ -1,2 +1,3 @@\n a\n b\n+c\n"},
		{"from empty", "", "a\n", "--- A\n+++ B\n@@ -0,0 +1 @@\n+a\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\nY\n",
			"--- A\n+++ B\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+Y\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := unifiedDiff("A", "B", c.a, c.b, 3); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}
