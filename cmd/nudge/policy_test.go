package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudge/nudge/api"
)

const cliPolicy = `timezone: America/Chicago
caps:
  - {channel: sms, limit: 1, per: 24h}
`

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nudge.db")
	file := filepath.Join(dir, "policy.yaml")
	writeFile(t, file, cliPolicy)

	out, _, err := cli(t, "policy", "validate", file)
	if err != nil || !strings.Contains(out, "policy.yaml: ok (time zone America/Chicago; SMS 08:00–21:00; SMS cap 1 per 24 h; capped steps skip)") {
		t.Fatalf("validate: %v %q", err, out)
	}
	if out, _, err := cli(t, "policy", "validate", "../../examples/policy.yaml"); err != nil {
		t.Errorf("the example: %v %q", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, strings.Replace(cliPolicy, "24h", "a day", 1)+"on_cap: wait\n")
	_, errOut, err := cli(t, "policy", "validate", bad)
	if err == nil || !strings.Contains(err.Error(), "2 problems") || !strings.Contains(errOut, bad+":3:") || !strings.Contains(errOut, bad+":4:") {
		t.Fatalf("validate bad: %v\n%s", err, errOut)
	}

	// Before anything is published: the default, said so.
	out, errOut, err = cli(t, "policy", "show", "--db", db)
	if err != nil || out != api.DefaultPolicyYAML || !strings.Contains(errOut, "built-in default") {
		t.Fatalf("show default: %v %q", err, errOut)
	}
	if out, _, err = cli(t, "policy", "diff", "--db", db); err != nil || !strings.Contains(out, "nothing to compare") {
		t.Fatalf("diff of nothing: %v %q", err, out)
	}

	if _, _, err = cli(t, "policy", "publish", "--db", db, bad); err == nil || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("publish bad: %v", err)
	}
	out, _, err = cli(t, "policy", "publish", "--db", db, file)
	if err != nil || out != "published policy v1\n" {
		t.Fatalf("publish: %v %q", err, out)
	}
	out, _, err = cli(t, "policy", "publish", file, "--db", db)
	if err != nil || out != "policy unchanged (v1)\n" {
		t.Fatalf("publish again: %v %q", err, out)
	}
	writeFile(t, file, cliPolicy+"on_cap: defer\n")
	if out, _, err = cli(t, "policy", "publish", "--db", db, file); err != nil || out != "published policy v2\n" {
		t.Fatalf("publish v2: %v %q", err, out)
	}

	out, errOut, err = cli(t, "policy", "show", "--db", db)
	if err != nil || out != cliPolicy+"on_cap: defer\n" || !strings.Contains(errOut, "policy v2, published") {
		t.Fatalf("show: %v %q %q", err, out, errOut)
	}
	if out, _, err = cli(t, "policy", "show", "--db", db, "--version", "1"); err != nil || out != cliPolicy {
		t.Fatalf("show v1: %v %q", err, out)
	}
	if _, _, err = cli(t, "policy", "show", "--db", db, "--version", "7"); err == nil {
		t.Fatal("show v7: no error")
	}
	out, _, err = cli(t, "policy", "versions", "--db", db)
	if err != nil || !strings.Contains(out, "v1 ") || !strings.Contains(out, "v2 ") {
		t.Fatalf("versions: %v %q", err, out)
	}
	out, _, err = cli(t, "policy", "diff", "--db", db)
	if err != nil || !strings.Contains(out, "--- policy v1") || !strings.Contains(out, "+++ policy v2") || !strings.Contains(out, "\n+on_cap: defer\n") {
		t.Fatalf("diff: %v %q", err, out)
	}
	out, _, err = cli(t, "policy", "diff", "--db", db, "default", "v1")
	if err != nil || !strings.Contains(out, "--- built-in default") || !strings.Contains(out, "+timezone: America/Chicago") {
		t.Fatalf("diff default: %v %q", err, out)
	}
	if out, _, err = cli(t, "policy", "diff", "--db", db, "2", "2"); err != nil || !strings.Contains(out, "are the same") {
		t.Fatalf("diff same: %v %q", err, out)
	}
}

func TestSuppressCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	out, _, err := cli(t, "suppress", "add", "--db", db, "(415) 555-2671", "--note", "asked")
	if err != nil || !strings.HasPrefix(out, "suppressed sms +1415") || !strings.Contains(out, "(do_not_contact)") {
		t.Fatalf("add: %v %q", err, out)
	}
	out, _, err = cli(t, "suppress", "add", "--db", db, "jane@example.com", "joe@example.com", "--reason", "complaint")
	if err != nil || strings.Count(out, "suppressed email ") != 2 || strings.Count(out, "(complaint)") != 2 {
		t.Fatalf("add emails: %v %q", err, out)
	}
	if _, _, err := cli(t, "suppress", "add", "--db", db, "--reason", "complaint", "+14155552671"); err == nil || !strings.Contains(err.Error(), "email addresses only") {
		t.Fatalf("add sms complaint: %v", err)
	}
	if _, _, err := cli(t, "suppress", "add", "--db", db, "not-a-number"); err == nil || !strings.Contains(err.Error(), "not a valid phone number") {
		t.Fatalf("add bad: %v", err)
	}
	if _, _, err := cli(t, "suppress", "add", "--db", db, "--reason", "annoyed", "+14155552671"); err == nil || !strings.Contains(err.Error(), "not a suppression reason") {
		t.Fatalf("add bad reason: %v", err)
	}
	out, _, err = cli(t, "suppress", "list", "--db", db)
	if err != nil || strings.Count(out, "complaint") != 2 || !strings.Contains(out, "asked") || strings.Contains(out, "4155552671") {
		t.Fatalf("list: %v %q", err, out)
	}
	if out, _, err = cli(t, "suppress", "list", "--db", db, "--channel", "email"); err != nil || strings.Count(out, "\n") != 3 {
		t.Fatalf("list email: %v %q", err, out)
	}
	out, _, err = cli(t, "suppress", "remove", "--db", db, "+1 415 555 2671")
	if err != nil || out != "removed sms +14155552671\n" {
		t.Fatalf("remove: %v %q", err, out)
	}
	_, errOut, err := cli(t, "suppress", "remove", "--db", db, "+14155552671")
	if err == nil || !strings.Contains(errOut, "not on the sms suppression list") {
		t.Fatalf("remove again: %v %q", err, errOut)
	}
	if out, _, err = cli(t, "suppress", "list", "--db", db); err != nil || strings.Count(out, "\n") != 3 || strings.Contains(out, "sms") {
		t.Fatalf("list after remove: %v %q", err, out)
	}
}
