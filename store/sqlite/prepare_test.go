package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// A commit prepared ahead (EnginePrepare) is written by its EngineCommit
// as it would have been without; one committed at another time than it was
// prepared for is encoded again for that time, and an invalid one fails
// to prepare as it fails to commit.
func TestEnginePrepare(t *testing.T) {
	ctx := context.Background()
	db, _ := migrated(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c1"}}, t0); err != nil {
		t.Fatal(err)
	}
	decision := func(reason string) *nudge.EngineCommit {
		return &nudge.EngineCommit{Decisions: []*nudge.Decision{{ContactID: "c1", JourneyID: "j", Outcome: nudge.OutcomeSkipped,
			Reason: reason, Details: map[string]any{"reason": reason}}}}
	}
	same, later := decision("same"), decision("later")
	for _, c := range []*nudge.EngineCommit{same, later} {
		if err := db.EnginePrepare(c, t0); err != nil {
			t.Fatalf("EnginePrepare: %v", err)
		}
	}
	if err := db.EngineCommit(ctx, same, t0); err != nil {
		t.Fatalf("EngineCommit of a prepared commit: %v", err)
	}
	if err := db.EngineCommit(ctx, later, t0.Add(time.Hour)); err != nil {
		t.Fatalf("EngineCommit of a commit prepared for another time: %v", err)
	}
	ds, err := db.DecisionList(ctx, &nudge.DecisionListParams{ContactID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || !ds[0].At.Equal(t0) || !ds[1].At.Equal(t0.Add(time.Hour)) || ds[1].Details["reason"] != "later" {
		t.Errorf("decisions = %+v, %+v; want same at %v, later at %v", ds[0], ds[len(ds)-1], t0, t0.Add(time.Hour))
	}
	bad := decision("")
	errPrep := db.EnginePrepare(bad, t0)
	errCommit := db.EngineCommit(ctx, bad, t0)
	if errPrep == nil || errCommit == nil || errPrep.Error() != errCommit.Error() {
		t.Errorf("an invalid commit: EnginePrepare = %v, EngineCommit = %v; want the same error", errPrep, errCommit)
	}
}
