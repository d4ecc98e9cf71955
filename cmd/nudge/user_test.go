package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func userCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runUser(context.Background(), args[0], args[1:], strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestUserCommands(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testUserCommands(t, filepath.Join(t.TempDir(), "nudge.db")) })
	t.Run("postgres", func(t *testing.T) { testUserCommands(t, postgresURL(t)) })
}

func testUserCommands(t *testing.T, db string) {

	out, _, err := userCLI(t, "correct horse battery\n", "create", "--db", db, "--email", "Ann@Example.com", "--role", "admin", "--password-stdin")
	if err != nil || !strings.HasPrefix(out, "created admin user ann@example.com (usr_") {
		t.Fatalf("create: %v %q", err, out)
	}
	if _, _, err := userCLI(t, "another password", "create", "--db", db, "--email", "bob@example.com", "--role", "viewer", "--password-stdin"); err != nil {
		t.Fatalf("create without a final newline: %v", err)
	}

	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByEmail(context.Background(), "ann@example.com")
	s.Close()
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("correct horse battery")); err != nil {
		t.Errorf("the stored hash does not match the password (without its newline): %v", err)
	}
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost != 12 {
		t.Errorf("bcrypt cost = %d, %v; want 12", cost, err)
	}

	out, _, err = userCLI(t, "", "list", "--db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
		!strings.Contains(lines[1], "ann@example.com  admin") || !strings.Contains(lines[2], "bob@example.com  viewer") {
		t.Errorf("list: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"email taken", "yet another one", []string{"--email", "ANN@example.com", "--role", "editor", "--password-stdin"}, "exists"},
		{"bad role", "yet another one", []string{"--email", "cy@example.com", "--role", "owner", "--password-stdin"}, "admin, editor, viewer"},
		{"bad email", "yet another one", []string{"--email", "Cy <cy@example.com>", "--role", "editor", "--password-stdin"}, "plain address"},
		{"short password", "short\n", []string{"--email", "cy@example.com", "--role", "editor", "--password-stdin"}, "too short"},
		{"long password", strings.Repeat("x", 73), []string{"--email", "cy@example.com", "--role", "editor", "--password-stdin"}, "too long"},
		{"no terminal", "", []string{"--email", "cy@example.com", "--role", "editor"}, "--password-stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := userCLI(t, tc.stdin, append([]string{"create", "--db", db}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, _, err := userCLI(t, "x", "create", "--db", db, "--password", "hunter2hunter2"); err == nil {
		t.Errorf("a --password flag was accepted")
	}
	if _, _, err := userCLI(t, "", "delete", "--db", db); err != errUsage {
		t.Errorf("unknown subcommand: %v, want usage", err)
	}
	if out, _, err := cli(t, "user", "list", "--db", db); err != nil || !strings.Contains(out, "bob@example.com") {
		t.Errorf("nudge user list through run: %v %q", err, out)
	}
}
