package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/policy"
)

// TestGuardrailsProperty runs random contacts (consent, zone, number),
// two SMS journeys of random priorities and random event sequences on a
// fake clock through the engine and the SQLite store, and checks what no
// run may ever do: queue an SMS for a contact without SMS opt-in, inside
// quiet hours in any of its candidate zones, beyond the 1-per-24h or
// 3-per-7-days caps, or after its enrollment converted; and that every
// send reached has exactly one final decision (sent or skipped), however
// often it was deferred.
func TestGuardrailsProperty(t *testing.T) {
	zones := []string{"", "America/Chicago", "America/Los_Angeles", "Europe/London", "Pacific/Honolulu"}
	phones := []string{"+1312555%04d", "+1415555%04d", "+1212555%04d", "+1808555%04d", "+447911%06d"}
	consents := []string{"", nudge.ConsentOptedIn, nudge.ConsentOptedOut}
	def := policy.Default()
	rapid.Check(t, func(rt *rapid.T) {
		s := nudgetest.SQLite(t)
		e := newEnv(t, s)
		e.ids = counter()
		e.eng = e.newEngine()
		for _, id := range []string{"alpha", "beta"} {
			wait := fmt.Sprintf("%dh", rapid.IntRange(1, 30).Draw(rt, id+"-wait"))
			e.publish(fmt.Sprintf("id: %s\npriority: %d\ntrigger: {event: go-%s}\ngoal: {event: done}\nsteps:\n  - id: first\n    sms: {template: %s-1, purpose: reminder}\n  - id: pause\n    wait: {for: %s}\n  - id: second\n    sms: {template: %s-2, purpose: decision_point}\n    on_cap: %s\n",
				id, rapid.IntRange(-2, 2).Draw(rt, id+"-priority"), id, id, wait, id, rapid.SampledFrom([]string{"skip", "defer"}).Draw(rt, id+"-on_cap")))
		}
		type person struct{ id, tz, phone, consent string }
		var people []person
		for i := range rapid.IntRange(1, 4).Draw(rt, "contacts") {
			p := person{id: fmt.Sprintf("p%d", i), tz: rapid.SampledFrom(zones).Draw(rt, "tz"), consent: rapid.SampledFrom(consents).Draw(rt, "consent")}
			p.phone = fmt.Sprintf(rapid.SampledFrom(phones).Draw(rt, "phone"), i)
			patch := &nudge.ContactPatch{ID: p.id, Phone: str(p.phone)}
			if p.tz != "" {
				patch.Timezone = str(p.tz)
			}
			e.contact(patch)
			if p.consent != "" {
				e.consent(p.id, p.consent)
			}
			people = append(people, p)
		}
		for range rapid.IntRange(1, 12).Draw(rt, "events") {
			e.clock.Advance(time.Duration(rapid.IntRange(0, 20*60).Draw(rt, "gap-min")) * time.Minute)
			p := rapid.SampledFrom(people).Draw(rt, "who")
			name := rapid.SampledFrom([]string{"go-alpha", "go-beta", "done"}).Draw(rt, "event")
			e.track(p.id, name, nil)
			e.run()
		}
		// Let every wait and deferral run out.
		for range 12 {
			e.advance(16 * time.Hour)
		}

		for _, p := range people {
			ms := e.sms(p.id)
			var times []time.Time
			for _, m := range ms {
				at := m.CreatedAt
				times = append(times, at)
				if p.consent != nudge.ConsentOptedIn {
					rt.Fatalf("SMS %s queued for %s, whose consent is %q", m.Template, p.id, p.consent)
				}
				for _, z := range def.Locate(p.tz, p.phone).Names {
					loc, err := time.LoadLocation(z)
					if err != nil {
						rt.Fatal(err)
					}
					if h := at.In(loc).Hour(); h < 8 || h >= 21 {
						rt.Fatalf("SMS %s queued for %s at %s, %s in %s: quiet hours", m.Template, p.id, at, at.In(loc).Format("15:04"), z)
					}
				}
			}
			slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
			for i := range times {
				if i > 0 && times[i].Sub(times[i-1]) < 24*time.Hour {
					rt.Fatalf("%s got two SMS within 24 h: %s and %s", p.id, times[i-1], times[i])
				}
				if i >= 3 && times[i].Sub(times[i-3]) < 7*24*time.Hour {
					rt.Fatalf("%s got four SMS within 7 days", p.id)
				}
			}
			// Nothing is queued once an enrollment converted.
			ens := map[string]*nudge.Enrollment{}
			for _, en := range e.enrollments(p.id) {
				ens[en.ID] = en
			}
			for _, m := range e.messages(p.id) {
				// (One queued in the same instant and cancelled by the
				// conversion was never handed to a provider.)
				if en := ens[m.EnrollmentID]; en.State == nudge.EnrollmentConverted && !m.CreatedAt.Before(en.EndedAt) && m.Status != nudge.MessageCancelled {
					rt.Fatalf("SMS %s queued for %s at %s, after its enrollment converted at %s", m.Template, p.id, m.CreatedAt, en.EndedAt)
				}
			}
			// Every send reached has exactly one final decision.
			ds := e.decisions(p.id)
			for _, en := range ens {
				for _, step := range []string{"first", "second"} {
					finals, deferred := 0, 0
					for _, d := range ds {
						if d.EnrollmentID != en.ID || d.StepID != step || d.Channel == "" {
							continue
						}
						switch d.Outcome {
						case nudge.OutcomeSent, nudge.OutcomeSkipped, nudge.OutcomeHeldOut:
							finals++
						case nudge.OutcomeDeferred:
							deferred++
						}
					}
					reached := finals+deferred > 0
					endedThere := en.StepID == step && !en.Live()
					switch {
					case finals > 1:
						rt.Fatalf("enrollment %s step %s has %d final decisions", en.ID, step, finals)
					case reached && finals == 0 && !endedThere:
						rt.Fatalf("enrollment %s step %s was deferred but never decided (state %s at %s)", en.ID, step, en.State, en.StepID)
					}
				}
			}
		}
	})
}

var _ = engine.ReasonQueued
