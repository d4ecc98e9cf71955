package engine_test

import (
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
)

// TestEventJustAfterPublish: a journey published, then an event that
// triggers it, both after the engine last read the journeys (as when they
// land while a run is under way): the event enters the new journey, not
// the journeys the engine knew before.
func TestEventJustAfterPublish(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.contact(&nudge.ContactPatch{ID: "ann"})
		e.run() // the engine has read the journeys: none yet
		e.publish("id: trial\ntrigger: {event: trial.started}\nsteps:\n  - id: wait\n    wait: {for: 72h}\n")
		e.track("ann", "trial.started", nil)
		if _, err := e.eng.ProcessInbox(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.enrollments("ann"); len(got) != 1 || got[0].JourneyID != "trial" {
			t.Fatalf("enrollments of ann = %v; want one in trial", got)
		}
	})
}
