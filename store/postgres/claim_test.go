package postgres_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/postgres"
)

// openNodes opens n stores, each with its own pool, on one fresh schema, as
// n `nudge serve` processes sharing a database would.
func openNodes(t *testing.T, n int) []*postgres.DB {
	t.Helper()
	base := os.Getenv("NUDGE_TEST_POSTGRES")
	admin := nudgetest.Postgres(t) // skips without a server
	ctx := context.Background()
	schema := fmt.Sprintf("nudge_test_nodes_%d", time.Now().UnixNano())
	if err := admin.CreateSchema(ctx, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.DropSchema(context.Background(), schema) })
	var dbs []*postgres.DB
	for range n {
		db, err := postgres.Open(ctx, nudgetest.WithSearchPath(base, schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	if err := dbs[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return dbs
}

// TestTwoNodes runs two stores (two pools) on one schema, each with two
// workers that claim inbox items and due enrollments in a loop and commit
// what they claimed, while events keep arriving. Every item and every
// enrollment must be claimed and committed exactly once: claims are
// disjoint, none is lost, and no commit conflicts.
func TestTwoNodes(t *testing.T) {
	dbs := openNodes(t, 2)
	ctx := context.Background()
	a := dbs[0]
	if _, _, err := a.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "j", Name: "J", Source: []byte("id: j\n")}, now); err != nil {
		t.Fatal(err)
	}
	const contacts, enrollments, batches, perBatch = 20, 1000, 20, 50
	for i := range contacts {
		if _, _, err := a.ContactPut(ctx, &nudge.Contact{ID: fmt.Sprintf("c%02d", i)}, now); err != nil {
			t.Fatal(err)
		}
	}
	var es []*nudge.Enrollment
	for i := range enrollments {
		es = append(es, &nudge.Enrollment{ID: fmt.Sprintf("e%05d", i), JourneyID: "j", Version: 1,
			ContactID: fmt.Sprintf("c%02d", i%contacts), Key: fmt.Sprint(i), State: nudge.EnrollmentWaiting,
			StepID: "wait", WakeAt: now.Add(-time.Duration(i%97) * time.Second), EnteredAt: now})
	}
	if err := a.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: es}, now); err != nil {
		t.Fatal(err)
	}

	var (
		producing atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		items     = map[int64]int{}  // inbox seq → times claimed
		messages  = map[string]int{} // event message id (or contact id) → times claimed
		enrolled  = map[string]int{} // enrollment id → times claimed
		errs      []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	producing.Store(true)
	wg.Go(func() {
		defer producing.Store(false)
		for b := range batches {
			var batch []nudge.IngestItem
			for i := range perBatch {
				batch = append(batch, nudge.IngestItem{Event: &nudge.Event{MessageID: fmt.Sprintf("m%03d-%03d", b, i),
					Type: nudge.EventTrack, ContactID: fmt.Sprintf("c%02d", i%contacts), Name: "page.viewed"}})
			}
			if _, err := dbs[b%2].EventIngest(ctx, batch, now); err != nil {
				fail(err)
				return
			}
		}
	})
	for w := range 4 {
		db := dbs[w%2]
		wg.Go(func() {
			for {
				got, err := db.InboxClaim(ctx, now, 7, time.Hour)
				if err != nil {
					fail(fmt.Errorf("inbox claim: %w", err))
					return
				}
				if len(got) == 0 {
					if producing.Load() {
						time.Sleep(time.Millisecond)
						continue
					}
					return
				}
				var done []int64
				mu.Lock()
				for _, it := range got {
					items[it.Seq]++
					k := it.ContactID
					if it.Event != nil {
						k = it.Event.MessageID
					}
					messages[k]++
					done = append(done, it.Seq)
				}
				mu.Unlock()
				if err := db.EngineCommit(ctx, &nudge.EngineCommit{InboxDone: done}, now); err != nil {
					fail(fmt.Errorf("commit inbox items %v: %w", done, err))
					return
				}
			}
		})
		wg.Go(func() {
			for {
				got, err := db.EnrollmentClaimDue(ctx, now, 7, time.Hour)
				if err != nil {
					fail(fmt.Errorf("enrollment claim: %w", err))
					return
				}
				if len(got) == 0 {
					return
				}
				c := &nudge.EngineCommit{}
				mu.Lock()
				for _, e := range got {
					enrolled[e.ID]++
					e.State, e.StepID, e.WakeAt, e.EndedAt = nudge.EnrollmentCompleted, "", time.Time{}, now
					c.Enrollments = append(c.Enrollments, e)
					c.Decisions = append(c.Decisions, &nudge.Decision{ContactID: e.ContactID, JourneyID: e.JourneyID,
						Version: e.Version, EnrollmentID: e.ID, StepID: "wait", Outcome: nudge.OutcomeCompleted, Reason: "wait_timer"})
				}
				mu.Unlock()
				if err := db.EngineCommit(ctx, c, now); err != nil {
					fail(fmt.Errorf("commit enrollments: %w", err))
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	if want := contacts + batches*perBatch; len(items) != want || len(messages) != want {
		t.Errorf("%d inbox items (%d distinct events and contacts) claimed, want %d", len(items), len(messages), want)
	}
	for seq, n := range items {
		if n != 1 {
			t.Errorf("inbox item %d claimed %d times", seq, n)
		}
	}
	if len(enrolled) != enrollments {
		t.Errorf("%d enrollments claimed, want %d", len(enrolled), enrollments)
	}
	for id, n := range enrolled {
		if n != 1 {
			t.Errorf("enrollment %s claimed %d times", id, n)
		}
	}
	live, err := a.EnrollmentList(ctx, &nudge.EnrollmentListParams{LiveOnly: true})
	if err != nil || len(live) != 0 {
		t.Errorf("live enrollments left: %d, %v", len(live), err)
	}
	ds, err := a.DecisionList(ctx, &nudge.DecisionListParams{Limit: 10000})
	if err != nil || len(ds) != enrollments {
		t.Errorf("%d decisions, %v; want one per enrollment, %d", len(ds), err, enrollments)
	}
	if left, err := a.InboxClaim(ctx, now.Add(2*time.Hour), 100, time.Hour); err != nil || len(left) != 0 {
		t.Errorf("inbox items left: %d, %v", len(left), err)
	}
}
