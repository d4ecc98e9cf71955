package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// remindJourney is a journey of one marketing SMS step, "text".
const remindJourney = "id: remind\ntrigger: {event: go}\nsteps:\n  - id: text\n    sms: {template: remind-sms, purpose: reminder}\n"

// remindStore opens a fresh SQLite database with remindJourney published
// at nudgetest.Epoch. The caller seeds it, closes it and starts the server
// on the path.
func remindStore(t *testing.T) (nudge.Store, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "nudge.db")
	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.JourneyPublish(context.Background(), &nudge.JourneyPublishParams{ID: "remind", Name: "Remind",
		Source: []byte(remindJourney), Hash: fmt.Sprintf("%x", sha256.Sum256([]byte(remindJourney)))}, nudgetest.Epoch); err != nil {
		t.Fatal(err)
	}
	return s, db
}
