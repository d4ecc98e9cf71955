package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/ingest"
)

// customerJourney enters contacts as they become customers. It ends at
// once and allows re-entry, so only the trigger itself keeps a contact out:
// under level triggering every change of a customer would enter it again.
const customerJourney = `id: customer
trigger: {attribute: 'contact.lifecycle_stage == "customer"'}
reentry: always
steps:
  - id: hello
    email: {template: hello}
`

// contactPath is one way a contact change reaches the store: set writes the
// contact's lifecycle stage and plan attribute.
type contactPath struct {
	name string
	set  func(e *env, id, stage, plan string)
}

var contactPaths = []contactPath{
	{"API patch (ContactMerge)", func(e *env, id, stage, plan string) {
		e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com"), LifecycleStage: &stage, Attributes: map[string]any{"plan": plan}})
	}},
	{"API put (ContactPut)", func(e *env, id, stage, plan string) {
		e.t.Helper()
		c := &nudge.Contact{ID: id, Email: id + "@example.com", LifecycleStage: stage, Attributes: map[string]any{"plan": plan}}
		if _, _, err := e.s.ContactPut(ctx, c, e.clock.Now()); err != nil {
			e.t.Fatalf("ContactPut: %v", err)
		}
	}},
	{"Segment identify", func(e *env, id, stage, plan string) {
		e.t.Helper()
		e.seq++
		body := fmt.Sprintf(`{"userId": %q, "messageId": "%s-i%d", "traits": {"email": "%s@example.com", "lifecycle_stage": %q, "plan": %q}}`,
			id, id, e.seq, id, stage, plan)
		it, err := (&ingest.Parser{}).ParseCall("identify", []byte(body), e.clock.Now())
		if err != nil {
			e.t.Fatalf("ParseCall: %v", err)
		}
		if _, err := e.s.EventIngest(ctx, []nudge.IngestItem{it}, e.clock.Now()); err != nil {
			e.t.Fatalf("EventIngest: %v", err)
		}
	}},
	{"CSV import", func(e *env, id, stage, plan string) {
		e.t.Helper()
		csv := fmt.Sprintf("id,email,lifecycle_stage,plan\n%s,%s@example.com,%s,%s\n", id, id, stage, plan)
		r, err := ingest.NewCSVReader(strings.NewReader(csv), nil, nil)
		if err != nil {
			e.t.Fatalf("NewCSVReader: %v", err)
		}
		sum, err := ingest.Import(ctx, e.s, r, ingest.ImportOptions{Now: e.clock.Now})
		if err == nil && sum.Rejected > 0 {
			err = fmt.Errorf("%v", sum.Errors)
		}
		if err != nil {
			e.t.Fatalf("Import: %v", err)
		}
	}},
}

// An attribute trigger fires when its condition goes from false to true,
// whichever path changed the contact, and never again while it stays true.
func TestAttributeTriggerFiresOnChange(t *testing.T) {
	type op struct{ stage, plan string } // a change; {"", ""}: run the engine
	run := op{}
	cases := []struct {
		name string
		ops  []op
		want int // entries
	}{
		{"becoming a customer enters", []op{{"lead", "free"}, run, {"customer", "free"}, run}, 1},
		{"a contact created as a customer enters", []op{{"customer", "free"}, run}, 1},
		{"a lead who stays one does not enter", []op{{"lead", "free"}, run, {"lead", "pro"}, run}, 0},
		{"changes of a customer who stays one do not enter again",
			[]op{{"lead", "free"}, run, {"customer", "free"}, run, {"customer", "pro"}, run, {"customer", "team"}, run}, 1},
		{"a change that changes nothing does not enter again", []op{{"customer", "free"}, run, {"customer", "free"}, run}, 1},
		{"no longer a customer, then one again: enters again",
			[]op{{"lead", "free"}, run, {"customer", "free"}, run, {"lead", "free"}, run, {"customer", "free"}, run}, 2},
		{"changes processed together enter once", []op{{"lead", "free"}, run, {"customer", "free"}, {"customer", "pro"}, {"customer", "team"}, run}, 1},
		{"each change is judged on its own, even when processed later",
			[]op{{"lead", "free"}, {"customer", "free"}, {"lead", "free"}, {"customer", "pro"}, run}, 2},
	}
	stores(t, func(t *testing.T, s engine.Store) {
		setup := newEnv(t, s)
		setup.publish(customerJourney)
		for pi, p := range contactPaths {
			t.Run(p.name, func(t *testing.T) {
				for ci, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						e := newEnv(t, s)
						id := fmt.Sprintf("p%dc%d", pi, ci)
						for _, o := range c.ops {
							e.clock.Advance(time.Minute)
							if o == run {
								e.run()
							} else {
								p.set(e, id, o.stage, o.plan)
							}
						}
						got := 0
						for _, d := range e.decisions(id) {
							if d.Reason == engine.ReasonEnteredAttribute {
								got++
							}
						}
						if got != c.want {
							t.Errorf("entered %d times, want %d; decisions: %v", got, c.want, e.reasons(id))
						}
					})
				}
			})
		}
	})
}

// A contact who already matched when the journey was published does not
// enter on a later, unrelated change; one changed by another journey's
// update_contact step enters.
func TestAttributeTriggerAfterPublishAndUpdateContact(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish("id: promote\ntrigger: {event: promote}\nsteps:\n  - id: up\n    update_contact: {set: {lifecycle_stage: customer}}\n")
		e.contact(&nudge.ContactPatch{ID: "old", Email: str("old@example.com"), LifecycleStage: str("customer")})
		e.contact(&nudge.ContactPatch{ID: "new", Email: str("new@example.com"), LifecycleStage: str("lead")})
		e.run()
		e.publish(customerJourney)
		e.contact(&nudge.ContactPatch{ID: "old", Attributes: map[string]any{"plan": "pro"}})
		e.track("new", "promote", nil)
		e.run()
		e.contact(&nudge.ContactPatch{ID: "new", Attributes: map[string]any{"plan": "pro"}})
		e.run()
		e.wantReasons("old")
		e.wantReasons("new", engine.ReasonEnteredEvent, engine.ReasonContactUpdated, engine.ReasonCompleted,
			engine.ReasonEnteredAttribute, engine.ReasonQueued, engine.ReasonCompleted)
	})
}
