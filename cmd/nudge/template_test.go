package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/sqlite"
)

// seedPreview makes a database with one contact and a folder of templates:
// an email, an SMS with an emoji and one with a syntax error.
func seedPreview(t *testing.T) (db, dir string) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	db, dir = filepath.Join(tmp, "nudge.db"), filepath.Join(tmp, "templates")
	s, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "ann", Email: "ann@example.com", Phone: "+14155552671",
		Timezone: "America/Los_Angeles", Attributes: map[string]any{"first_name": "Ann"}}, now); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"welcome.email.liquid": "Subject: Welcome, {{ contact.attributes.first_name }}\n\nHi {{ contact.attributes.first_name }}.\n--- html ---\n<p>Hi {{ contact.attributes.first_name }}</p>\n",
		"party.sms.liquid": "🎉 {{ contact.attributes.first_name }}, the party starts at 8! Bring a friend, bring snacks, " +
			"bring your best dance moves. Reply STOP to opt out.",
		"broken.sms.liquid": "Hi {{ contact.attributes.first_name }}\n{% if contact.email %}no end",
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return db, dir
}

func TestTemplatePreview(t *testing.T) {
	db, dir := seedPreview(t)
	t.Setenv("NUDGE_SMS_PRICE", "0.0079")
	preview := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"template", "preview"}, append(args, "--db", db, "--templates", dir)...), &out, &errb)
		return out.String() + errb.String(), err
	}

	t.Run("email", func(t *testing.T) {
		out, err := preview("welcome", "--contact", "ann")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"Subject: Welcome, Ann", "Hi Ann.", "<p>Hi Ann</p>", "no enrollment"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
	})
	t.Run("emoji sms", func(t *testing.T) {
		out, err := preview("party", "--contact", "ann")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"🎉 Ann, the party", "encoding   UCS-2", "segments   2", "cost       0.0158 per send", "warning: '🎉'"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		out, err := preview("broken", "--contact", "ann")
		if err == nil || !strings.Contains(err.Error(), "broken.sms.liquid:2") {
			t.Errorf("want an error with file:line, got %v\n%s", err, out)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := preview("nope", "--contact", "ann"); err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) {
			t.Errorf("unknown template: %v", err)
		}
		if _, err := preview("welcome", "--contact", "nobody"); err == nil {
			t.Error("unknown contact: no error")
		}
		if _, err := preview("welcome"); err != errUsage {
			t.Errorf("no --contact: %v, want usage", err)
		}
	})
}
