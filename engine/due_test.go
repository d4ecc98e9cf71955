package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
)

// Due enrollments drained in many small batches get the decisions one
// large batch gives: every enrollment advances once, and a contact's two
// sends, in two batches, still share its cap.
func TestDueInSmallBatches(t *testing.T) {
	const contacts = 30
	run := func(t *testing.T, s engine.Store, batch int) (map[string][]string, int) {
		e := newEnv(t, s)
		eng, err := engine.New(engine.Config{Store: s, Clock: e.clock, NewID: e.ids, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		e.eng = eng
		if _, _, err := s.PolicyPublish(ctx, []byte("caps:\n  - {channel: email, limit: 1, per: 24h}\n"), "", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"one", "two"} {
			e.publish("id: " + id + "\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: hello\n    email: {template: hello}\n")
		}
		for i := range contacts {
			id := fmt.Sprintf("c%02d", i)
			e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com")})
			e.track(id, "go", nil)
		}
		e.run()
		e.clock.Advance(24 * time.Hour)
		n := 0
		for {
			k, err := e.eng.ProcessDue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
			n += k
		}
		out := map[string][]string{}
		for i := range contacts {
			id := fmt.Sprintf("c%02d", i)
			out[id] = e.reasons(id)
			if ms := e.messages(id); len(ms) != 1 {
				t.Errorf("batch %d: %s has %d messages, want 1 (the cap)", batch, id, len(ms))
			}
		}
		return out, n
	}
	for _, st := range benchStores {
		t.Run(st.name, func(t *testing.T) {
			// Batches of 3 split most contacts' two enrollments (adjacent
			// in claim order) between two batches.
			small, n := run(t, st.open(t), 3)
			if n != 2*contacts {
				t.Errorf("ProcessDue in batches of 3: %d transitions, want %d", n, 2*contacts)
			}
			big, _ := run(t, st.open(t), 500)
			for id, want := range big {
				if got := small[id]; !slices.Equal(got, want) {
					t.Errorf("%s: batches of 3 decided %v; one batch %v", id, got, want)
				}
			}
		})
	}
}

// A drain goes on past its first few batches only while the inbox is
// empty: an event ingested during a mass drain waits behind at most four
// batches, and with nothing in the inbox one call drains everything.
func TestDueYieldsToTheInbox(t *testing.T) {
	const contacts, batch = 30, 3
	for _, st := range benchStores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t, st.open(t))
			eng, err := engine.New(engine.Config{Store: e.s, Clock: e.clock, NewID: e.ids, Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			e.eng = eng
			e.publish(waitingJourney)
			enter := func(prefix string) {
				for i := range contacts {
					id := fmt.Sprintf("%s%02d", prefix, i)
					e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com")})
					e.track(id, "go", nil)
				}
				e.run()
				e.clock.Advance(24 * time.Hour)
			}
			enter("c")
			e.track("c00", "other", nil)
			if n, err := eng.ProcessDue(ctx); err != nil || n != 4*batch {
				t.Errorf("ProcessDue with an event in the inbox = %d, %v; want %d (four batches)", n, err, 4*batch)
			}
			if n := e.run(); n != 1+contacts-4*batch {
				t.Errorf("RunOnce after it handled %d, want the event and the %d enrollments left", n, contacts-4*batch)
			}
			enter("d")
			if n, err := eng.ProcessDue(ctx); err != nil || n != contacts {
				t.Errorf("ProcessDue with an empty inbox = %d, %v; want %d (all of them)", n, err, contacts)
			}
		})
	}
}
