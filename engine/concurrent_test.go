package engine_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
)

// waitingJourney has every entrant wait a day, then send one email.
const waitingJourney = "id: drain\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: hello\n    email: {template: hello}\n"

// seedWaiting enters n contacts into waitingJourney, all due a day later.
func seedWaiting(t testing.TB, e *env, n int) {
	t.Helper()
	e.publish(waitingJourney)
	const chunk = 1000
	now := e.clock.Now()
	for i := 0; i < n; i += chunk {
		var items []nudge.IngestItem
		for k := i; k < min(n, i+chunk); k++ {
			id := fmt.Sprintf("c%07d", k)
			items = append(items, nudge.IngestItem{
				Event: &nudge.Event{MessageID: "go-" + id, Type: nudge.EventTrack, ContactID: id, Name: "go", Timestamp: now, ReceivedAt: now},
				Patch: nil,
			})
		}
		if _, err := e.s.EventIngest(ctx, items, now); err != nil {
			t.Fatal(err)
		}
		var patches []*nudge.ContactPatch
		for k := i; k < min(n, i+chunk); k++ {
			patches = append(patches, &nudge.ContactPatch{ID: fmt.Sprintf("c%07d", k), Email: str("x@example.com")})
		}
		if _, err := e.s.ContactMerge(ctx, patches, now); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
}

func TestTwoEnginesOnePostgres(t *testing.T) {
	s := nudgetest.Postgres(t)
	e := newEnv(t, s)
	const n = 300
	seedWaiting(t, e, n)
	e.clock.Advance(25 * time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		eng, err := engine.New(engine.Config{Store: s, Clock: e.clock, NewID: e.ids, Batch: 25})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if _, err := eng.RunOnce(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{JourneyID: "drain", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	sends := map[string]int{}
	for _, d := range ds {
		if d.Reason == engine.ReasonQueued {
			sends[d.EnrollmentID]++
		}
	}
	ms, err := s.MessageList(ctx, &nudge.MessageListParams{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != n || len(ms) != n {
		t.Errorf("%d enrollments sent, %d messages; want %d each", len(sends), len(ms), n)
	}
	for id, k := range sends {
		if k != 1 {
			t.Errorf("enrollment %s sent %d times", id, k)
		}
	}
}
