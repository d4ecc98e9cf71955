package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/policy"
)

// guardPolicy is the workspace policy the guardrail tests publish: the
// shipped defaults, as version 1.
const guardPolicy = "timezone: America/Chicago\n"

// textJourney is a journey that texts at once on its trigger event (or
// after wait), with a goal event.
func textJourney(id string, priority int, wait string) string {
	s := "id: " + id + "\ntrigger: {event: go}\ngoal: {event: done}\n"
	if priority != 0 {
		s += "priority: " + itoa(priority) + "\n"
	}
	s += "steps:\n"
	if wait != "" {
		s += "  - id: pause\n    wait: {until: '" + wait + "'}\n"
	}
	return s + "  - id: text\n    sms: {template: " + id + "-sms, purpose: reminder}\n"
}

func itoa(n int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}

// guardEnv is an env with the policy published and a contact in Chicago
// (Epoch, Monday 09:00 UTC, is 03:00 there), opted in to SMS.
func guardEnv(t *testing.T, s engine.Store, journeys ...string) *env {
	t.Helper()
	e := newEnv(t, s)
	if _, _, err := s.PolicyPublish(ctx, []byte(guardPolicy), "", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for _, j := range journeys {
		e.publish(j)
	}
	e.contact(&nudge.ContactPatch{ID: "jane", Email: str("jane@example.com"), Phone: str("+13125550100"), Timezone: str("America/Chicago")})
	e.optIn("jane")
	return e
}

// find returns the contact's decisions at step, in order.
func (e *env) at(contactID, step string) []*nudge.Decision {
	var out []*nudge.Decision
	for _, d := range e.decisions(contactID) {
		if d.StepID == step && d.Channel != "" {
			out = append(out, d)
		}
	}
	return out
}

// versioned checks that every decision records the published policy.
func (e *env) versioned(contactID string) {
	e.t.Helper()
	for _, d := range e.decisions(contactID) {
		if d.PolicyVersion != 1 {
			e.t.Errorf("decision %s %s of %s has policy version %d, want 1", d.Outcome, d.Reason, d.JourneyID, d.PolicyVersion)
		}
	}
}

func (e *env) sms(contactID string) []*nudge.Message {
	var out []*nudge.Message
	for _, m := range e.messages(contactID) {
		if m.Channel == nudge.ChannelSMS && m.Status != nudge.MessageCancelled {
			out = append(out, m)
		}
	}
	return out
}

func TestGuardrails(t *testing.T) {
	// Each case gets its own store (stores), SQLite and PostgreSQL.
	run := func(name string, f func(t *testing.T, s engine.Store)) {
		t.Run(name, func(t *testing.T) { stores(t, f) })
	}
	{
		run("quiet hours defer, then send at the allowed minute", func(t *testing.T, s engine.Store) {
			e := guardEnv(t, s, textJourney("remind", 0, ""))
			e.track("jane", "go", nil)
			e.run()
			ds := e.at("jane", "text")
			if len(ds) != 1 || ds[0].Outcome != nudge.OutcomeDeferred || ds[0].Reason != policy.ReasonQuietHours {
				t.Fatalf("decisions at text = %v, want one quiet_hours deferral", reasons(ds))
			}
			until, _ := ds[0].Details["until"].(time.Time)
			if until.IsZero() {
				until, _ = time.Parse(time.RFC3339Nano, ds[0].Details["until"].(string))
			}
			open := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC) // 08:00 CST
			if until.Before(open) || !until.Before(open.Add(15*time.Minute)) {
				t.Errorf("deferred until %s, want within the 15-minute jitter after %s", until, open)
			}
			if want := "SMS 'remind-sms' deferred to " + until.In(mustLoc(t, "America/Chicago")).Format("15:04") + " America/Chicago (quiet hours 21:00–08:00; zone from contact)."; ds[0].Message != want {
				t.Errorf("sentence = %q, want %q", ds[0].Message, want)
			}
			if n := len(e.sms("jane")); n != 0 {
				t.Fatalf("%d SMS queued during quiet hours", n)
			}
			e.clock.Set(until.Add(-time.Second))
			e.run()
			if n := len(e.sms("jane")); n != 0 {
				t.Fatalf("%d SMS queued before the deferral ended", n)
			}
			e.clock.Set(until)
			e.run()
			ms := e.sms("jane")
			if len(ms) != 1 || !ms[0].CreatedAt.Equal(until) {
				t.Fatalf("messages = %+v, want one created at %s", ms, until)
			}
			e.wantReasons("jane", engine.ReasonEnteredEvent, policy.ReasonQuietHours, engine.ReasonQueued, engine.ReasonCompleted)
			e.versioned("jane")
		})

		run("goal met while deferred: never sent", func(t *testing.T, s engine.Store) {
			e := guardEnv(t, s, textJourney("remind", 0, ""))
			e.track("jane", "go", nil)
			e.run()
			e.clock.Advance(time.Hour)
			e.track("jane", "done", nil)
			e.run()
			e.advance(24 * time.Hour)
			if n := len(e.sms("jane")); n != 0 {
				t.Errorf("%d SMS sent after the goal was met", n)
			}
			e.wantReasons("jane", engine.ReasonEnteredEvent, policy.ReasonQuietHours, engine.ReasonGoalMet)
			e.versioned("jane")
		})

		run("cap across two journeys in one batch", func(t *testing.T, s engine.Store) {
			// Both wait until 15:00 UTC (09:00 in Chicago), then text: one
			// claim of due enrollments holds both.
			wait := `timestamp("2026-03-02T15:00:00Z")`
			e := guardEnv(t, s, textJourney("alpha", 0, wait), textJourney("beta", 0, wait))
			e.track("jane", "go", nil)
			e.run()
			e.clock.Set(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC))
			e.run()
			if n := len(e.sms("jane")); n != 1 {
				t.Fatalf("%d SMS queued, want 1 (cap 1 per 24 h)", n)
			}
			var capped *nudge.Decision
			for _, d := range e.decisions("jane") {
				if d.Reason == policy.ReasonCapSMS24h {
					capped = d
				}
			}
			if capped == nil || capped.Outcome != nudge.OutcomeSkipped || !strings.Contains(capped.Message, "Skipped: SMS cap 1 per 24 h reached by") {
				t.Fatalf("no cap skip: %v", e.reasons("jane"))
			}
			e.versioned("jane")
		})

		run("priority: the lower-priority journey processed first still loses", func(t *testing.T, s engine.Store) {
			// low is due a minute before high, so a claim takes it first.
			low := textJourney("low", 1, `timestamp("2026-03-02T14:59:00Z")`)
			high := textJourney("high", 9, `timestamp("2026-03-02T15:00:00Z")`)
			e := guardEnv(t, s, low, high)
			e.track("jane", "go", nil)
			e.run()
			e.clock.Set(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC))
			e.run()
			ms := e.sms("jane")
			if len(ms) != 1 || ms[0].JourneyID != "high" {
				t.Fatalf("messages = %+v, want high's only", ms)
			}
			var lost *nudge.Decision
			for _, d := range e.decisions("jane") {
				if d.JourneyID == "low" && d.StepID == "text" && d.Channel != "" {
					lost = d
				}
			}
			if lost == nil || lost.Outcome != nudge.OutcomeSkipped || !strings.Contains(lost.Message, "'high-sms'") {
				t.Fatalf("low's decision = %+v, want skipped naming high's message", lost)
			}
			e.versioned("jane")
		})

		run("priority: a deferred higher-priority message holds the cap", func(t *testing.T, s engine.Store) {
			// high is triggered at 03:00 Chicago and deferred to 08:00+;
			// low comes due at 08:00 and must leave the room to high.
			low := "id: low\npriority: 1\ntrigger: {event: later}\nsteps:\n  - id: text\n    sms: {template: low-sms, purpose: reminder}\n"
			e := guardEnv(t, s, low, textJourney("high", 9, ""))
			e.track("jane", "go", nil)
			e.run()
			e.clock.Set(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
			e.track("jane", "later", nil)
			e.run()
			e.advance(time.Hour)
			ms := e.sms("jane")
			if len(ms) != 1 || ms[0].JourneyID != "high" {
				t.Fatalf("messages = %+v, want high's only", ms)
			}
			ds := e.at("jane", "text")
			var lost *nudge.Decision
			for _, d := range ds {
				if d.JourneyID == "low" {
					lost = d
				}
			}
			if lost == nil || lost.Reason != policy.ReasonPriorityLost || !strings.Contains(lost.Message, "higher-priority journey 'high'") {
				t.Fatalf("low's decision = %+v, want priority_lost naming high", lost)
			}
		})

		for _, tt := range []struct {
			name, reason string
			setup        func(e *env)
		}{
			{"opted out", policy.ReasonOptedOut, func(e *env) { e.consent("jane", nudge.ConsentOptedOut) }},
			{"suppressed", policy.ReasonSuppressedPhone, func(e *env) {
				if _, err := e.s.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{{Channel: nudge.ChannelSMS, Address: "+13125550100", Reason: nudge.SuppressDoNotContact, Source: "admin"}}, e.clock.Now()); err != nil {
					e.t.Fatal(err)
				}
			}},
		} {
			run(tt.name, func(t *testing.T, s engine.Store) {
				e := guardEnv(t, s, textJourney("remind", 0, ""))
				tt.setup(e)
				e.clock.Set(time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)) // noon in Chicago
				e.track("jane", "go", nil)
				e.run()
				e.wantReasons("jane", engine.ReasonEnteredEvent, tt.reason, engine.ReasonCompleted)
				if n := len(e.sms("jane")); n != 0 {
					t.Errorf("%d SMS sent", n)
				}
				e.versioned("jane")
			})
		}

		run("consent lookup failure: deferred, not sent", func(t *testing.T, s engine.Store) {
			e := guardEnv(t, s, textJourney("remind", 0, ""))
			e.s = failingConsent{s}
			e.eng = e.newEngine()
			e.clock.Set(time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC))
			e.track("jane", "go", nil)
			e.run()
			e.advance(10 * time.Minute)
			if n := len(e.sms("jane")); n != 0 {
				t.Fatalf("%d SMS sent without consent facts", n)
			}
			ds := e.at("jane", "text")
			if len(ds) < 2 || ds[0].Outcome != nudge.OutcomeDeferred || ds[0].Reason != policy.ReasonConsentUnavailable {
				t.Fatalf("decisions at text = %v, want consent_unavailable deferrals", reasons(ds))
			}
			// Once the lookup works again, the text goes.
			e.s = s
			e.eng = e.newEngine()
			e.advance(10 * time.Minute)
			if n := len(e.sms("jane")); n != 1 {
				t.Fatalf("%d SMS after the lookup recovered, want 1", n)
			}
			e.versioned("jane")
		})
	}
}

// failingConsent is a store whose bulk consent lookup fails.
type failingConsent struct{ engine.Store }

func (failingConsent) ConsentListMany(context.Context, []string) (map[string][]*nudge.ConsentState, error) {
	return nil, errors.New("consent database unreachable")
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNilPolicyIsDefault(t *testing.T) {
	// Advance without a Policy still runs the shipped policy: a marketing
	// SMS with no opt-in on record is never queued.
	j := mustJourney(t, textJourney("remind", 0, ""))
	jane := &nudge.Contact{ID: "c1", Phone: "+13125550100", Timezone: "America/Chicago"}
	en := &nudge.Enrollment{ID: "e1", JourneyID: j.ID, Version: 1, ContactID: "c1", EnteredAt: nudgetest.Epoch}
	tr := engine.Advance(j, en, jane, engine.Input{Kind: engine.InputEnter}, nudgetest.Epoch.Add(9*time.Hour), engine.Options{NewID: counter()})
	if len(tr.Messages) != 0 || tr.Decisions[0].Reason != policy.ReasonNoConsentSMS {
		t.Errorf("reasons %v, %d messages; want no_consent_sms and none", reasons(tr.Decisions), len(tr.Messages))
	}
}
