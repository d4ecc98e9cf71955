package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/sqlite"
)

func TestDemoLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(filepath.Join(dir, "nudge-demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dir, "templates")
	if err := mergeDemoTemplates("../../examples", tdir); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r, err := loadDemo(ctx, demoSetup{Store: s, Examples: "../../examples", Now: now, Templates: tdir,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if h := now.Sub(r.From); h < 3*7*24*time.Hour || h > 4*7*24*time.Hour+time.Hour {
		t.Errorf("history starts %s, %s before now: want 3 to 4 weeks", r.From, h)
	}
	if r.EventsSkipped > 0 || r.ContactErrors > 0 {
		t.Errorf("%d events not replayed, %d contacts rejected", r.EventsSkipped, r.ContactErrors)
	}

	js, err := s.JourneyList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != len(demoExamples) {
		t.Fatalf("%d journeys, want %d", len(js), len(demoExamples))
	}
	for _, j := range js {
		ens, err := s.EnrollmentList(ctx, &nudge.EnrollmentListParams{JourneyID: j.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{JourneyID: j.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(ens) == 0 || len(ds) == 0 {
			t.Errorf("journey %s: %d enrollments, %d decisions", j.ID, len(ens), len(ds))
		}
		for _, d := range ds {
			if d.At.Before(r.From) || d.At.After(now) {
				t.Errorf("journey %s: decision at %s, outside the history", j.ID, d.At)
			}
		}
	}
	sent, err := s.MessageList(ctx, &nudge.MessageListParams{Status: nudge.MessageSent, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	channels := map[string]int{}
	for _, m := range sent {
		channels[m.Channel]++
	}
	if channels[nudge.ChannelEmail] == 0 || channels[nudge.ChannelSMS] == 0 || r.Sent != len(sent) {
		t.Errorf("sent to the log sink: %v (counted %d)", channels, r.Sent)
	}
	failed, err := s.MessageList(ctx, &nudge.MessageListParams{Status: nudge.MessageFailed, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range failed {
		t.Errorf("message %s (%s, template %s) failed", m.ID, m.Channel, m.Template)
	}

	u, err := s.UserByEmail(ctx, demoEmail)
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != nudge.UserAdmin || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(r.Password)) != nil {
		t.Errorf("demo user %+v does not take the printed password", u)
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}

func TestDemoRefusesTheRealDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	err := run(context.Background(), []string{"serve", "--demo", "--db", db, "--examples", "../../examples"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("serve --demo --db nudge.db: %v", err)
	}
}
