package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/sqlite"
)

// drainDB is a migrated store with journey j and contacts c0… c(n-1), at
// the time it returns.
func drainDB(t *testing.T, n int) (*sqlite.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db, _ := migrated(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	src := []byte("id: j\n")
	sum := sha256.Sum256(src)
	if _, _, err := db.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "j", Name: "J", Source: src, Hash: hex.EncodeToString(sum[:])}, now); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: fmt.Sprintf("c%d", i)}}, now); err != nil {
			t.Fatal(err)
		}
	}
	return db, now
}

// A commit prepared ahead (EnginePrepare) is written by its EngineCommit
// as it would have been without; one committed at another time than it was
// prepared for is encoded again for that time, and an invalid one fails
// to prepare as it fails to commit.
func TestEnginePrepare(t *testing.T) {
	ctx := context.Background()
	db, t0 := drainDB(t, 2)
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

// A claim in two parts (EnrollmentClaimDueIDs, then EnrollmentsClaimed)
// claims what EnrollmentClaimDue would, and reads the claimed enrollments
// in claim order, leaving out one that changed after the claim, with the
// live enrollments of their contacts.
func TestEnrollmentClaimDueIDs(t *testing.T) {
	ctx := context.Background()
	db, now := drainDB(t, 6)
	c := &nudge.EngineCommit{}
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		// Due from four hours ago to now, the last in an hour; ids
		// against the wake order.
		c.Enrollments = append(c.Enrollments, &nudge.Enrollment{ID: fmt.Sprintf("e%d", 9-i), JourneyID: "j", Version: 1, ContactID: id,
			State: nudge.EnrollmentWaiting, StepID: "wait", WakeAt: now.Add(time.Duration(i-4) * time.Hour),
			Steps: map[string]nudge.StepRecord{"wait": {At: now}}})
	}
	if err := db.EngineCommit(ctx, c, now); err != nil {
		t.Fatal(err)
	}
	ids, err := db.EnrollmentClaimDueIDs(ctx, now, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if want := []string{"e6", "e7", "e8", "e9"}; !slices.Equal(ids, want) {
		t.Fatalf("claimed %v, want %v (the four due first)", ids, want)
	}
	if more, err := db.EnrollmentClaimDueIDs(ctx, now, 4, time.Minute); err != nil || len(more) != 1 || more[0] != "e5" {
		t.Errorf("second claim = %v, %v; want [e5] (the first four are claimed, e4 is not due)", more, err)
	}
	// e8 ends after the claim.
	ended := *c.Enrollments[1]
	ended.State, ended.WakeAt, ended.EndedAt = nudge.EnrollmentExited, time.Time{}, now
	if err := db.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{&ended}}, now); err != nil {
		t.Fatal(err)
	}
	// c0 (of e9) has a second live enrollment in the journey,
	// under another key, claimed by nobody; c4 (of e5, claimed by the
	// second claim) one more.
	other := []*nudge.Enrollment{
		{ID: "f0", JourneyID: "j", Key: "second", Version: 1, ContactID: "c0", State: nudge.EnrollmentWaiting, StepID: "wait",
			WakeAt: now.Add(time.Hour), Steps: map[string]nudge.StepRecord{"wait": {At: now}}},
		{ID: "f4", JourneyID: "j", Key: "second", Version: 1, ContactID: "c4", State: nudge.EnrollmentWaiting, StepID: "wait",
			WakeAt: now.Add(time.Hour), Steps: map[string]nudge.StepRecord{"wait": {At: now}}},
	}
	if err := db.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: other}, now); err != nil {
		t.Fatal(err)
	}
	es, live, err := db.EnrollmentsClaimed(ctx, ids, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.ID)
		if e.Steps["wait"].At.IsZero() {
			t.Errorf("%s came without its steps", e.ID)
		}
	}
	if want := []string{"e9", "e7", "e6"}; !slices.Equal(got, want) {
		t.Errorf("EnrollmentsClaimed = %v, want %v (in wake order, without e8)", got, want)
	}
	// The live ones of c0, c2 and c3 (e8's contact c1 has none left),
	// as EnrollmentListLive lists them.
	want, err := db.EnrollmentListLive(ctx, []string{"c0", "c1", "c2", "c3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 3 || len(want) != 3 {
		t.Errorf("live enrollments of %d contacts, EnrollmentListLive of %d; want 3", len(live), len(want))
	}
	for cid, ws := range want {
		var gotIDs, wantIDs []string
		for _, e := range live[cid] {
			gotIDs = append(gotIDs, e.ID)
			if e.ID == "f0" && (e.Steps != nil || e.Rev != 1 || !e.WakeAt.Equal(now.Add(time.Hour))) {
				t.Errorf("f0, not claimed: steps %v, rev %d, wake %v; want no steps, rev 1, its wake time", e.Steps, e.Rev, e.WakeAt)
			}
		}
		for _, e := range ws {
			wantIDs = append(wantIDs, e.ID)
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("live enrollments of %s = %v, want %v", cid, gotIDs, wantIDs)
		}
	}
}

// An update given its prior (EngineCommit.Prior) counts in the reports as
// one without, and fails with ECONFLICT, changing nothing, when the
// stored row is not as the prior says, even at the revision given.
func TestEnginePrior(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	report := func(prior bool) []*nudge.ReportData {
		t.Helper()
		db, _ := drainDB(t, 2)
		var es []*nudge.Enrollment
		for i := range 2 {
			es = append(es, &nudge.Enrollment{ID: fmt.Sprintf("e%d", i), JourneyID: "j", Version: 1, ContactID: fmt.Sprintf("c%d", i),
				State: nudge.EnrollmentWaiting, StepID: "wait", WakeAt: now, HeldOut: i == 1, EnteredAt: now.Add(-49 * time.Hour)})
		}
		entered := &nudge.EngineCommit{Enrollments: es, Decisions: []*nudge.Decision{
			{ContactID: "c0", JourneyID: "j", Version: 1, EnrollmentID: "e0", StepID: "wait", Outcome: nudge.OutcomeEntered, Reason: "entered_event"}}}
		if err := db.EngineCommit(ctx, entered, now.Add(-25*time.Hour)); err != nil {
			t.Fatal(err)
		}
		read, err := db.EnrollmentGetMany(ctx, []string{"e0", "e1"})
		if err != nil {
			t.Fatal(err)
		}
		c := &nudge.EngineCommit{}
		for _, id := range []string{"e0", "e1"} {
			n := *read[id]
			n.State, n.WakeAt, n.EndedAt = nudge.EnrollmentCompleted, time.Time{}, now
			c.Enrollments = append(c.Enrollments, &n)
			c.Decisions = append(c.Decisions, &nudge.Decision{ContactID: n.ContactID, JourneyID: "j", Version: 1, EnrollmentID: id,
				Outcome: nudge.OutcomeCompleted, Reason: "completed"})
			if prior {
				c.Prior = append(c.Prior, read[id])
			}
		}
		// A prior that says e0 was held out: the commit fails, whole.
		if prior {
			wrong := *read["e0"]
			wrong.HeldOut = true
			bad := *c
			bad.Prior = []*nudge.Enrollment{&wrong, read["e1"]}
			if err := db.EngineCommit(ctx, &bad, now); nudge.ErrorCode(err) != nudge.ECONFLICT {
				t.Fatalf("a commit with a prior not as stored: %v; want ECONFLICT", err)
			}
			if got, err := db.EnrollmentGetMany(ctx, []string{"e0", "e1"}); err != nil || got["e0"].Rev != 1 || got["e1"].Rev != 1 {
				t.Fatalf("after the failed commit: %v, %v; want both at revision 1", got, err)
			}
		}
		if err := db.EngineCommit(ctx, c, now); err != nil {
			t.Fatalf("EngineCommit (prior given: %v): %v", prior, err)
		}
		// The whole history, and the days after the one they entered on
		// (from midnight: whole days are read from the counters).
		var ds []*nudge.ReportData
		for _, p := range []nudge.ReportParams{{JourneyID: "j"}, {JourneyID: "j", From: now.Add(-33 * time.Hour)}} {
			d, err := db.ReportJourney(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		return ds
	}
	without, with := report(false), report(true)
	if diff := cmp.Diff(without, with); diff != "" {
		t.Errorf("reports with the prior given differ from without (-without +with):\n%s", diff)
	}
	if len(with[0].Cohorts) == 0 {
		t.Errorf("no cohort counted: %+v", with[0])
	}
}

// ConsentListFor, given the contacts as read, returns what ConsentListMany
// of their ids does: each contact's states (an address of two contacts
// counts for both), none for one without any.
func TestConsentListFor(t *testing.T) {
	ctx := context.Background()
	db, now := drainDB(t, 0)
	email := func(s string) *string { return &s }
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c0", Email: email("Jane@example.com"), Phone: email("+13125550100")},
		{ID: "c1", Email: email("jane@example.com")}, {ID: "c2", Email: email("bob@example.com")}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsentRecord(ctx, []*nudge.ConsentRecordParams{
		{ContactID: "c0", Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedIn, Source: nudge.SourceForm, OccurredAt: now},
		{ContactID: "c1", Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: now},
	}, now); err != nil {
		t.Fatal(err)
	}
	ids := []string{"c0", "c1", "c2"}
	cs, err := db.ContactGetMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.ConsentListMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.ConsentListFor(ctx, []*nudge.Contact{cs["c0"], cs["c1"], cs["c2"]})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConsentListFor differs from ConsentListMany (-many +for):\n%s", diff)
	}
	if len(got["c0"]) != 2 || len(got["c1"]) != 1 || got["c2"] == nil || len(got["c2"]) != 0 {
		t.Errorf("states: c0 %d, c1 %d, c2 %v; want 2 (its text and its email, which c1 shares), 1, none", len(got["c0"]), len(got["c1"]), got["c2"])
	}
}
