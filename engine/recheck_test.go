package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/policy"
)

// The delivery worker takes the re-check as it is.
var _ = delivery.Config{Recheck: (*engine.Engine)(nil).RecheckMany}

// recheckJourney texts at once, then waits: its SMS is queued while the
// enrollment waits. The goal and exit rule read attributes a test sets.
const recheckJourney = `id: demo
trigger: {event: go}
goal:
  event: demo.booked
  condition: 'contact.attributes.booked == true'
exit:
  - 'contact.attributes.churned == true'
steps:
  - id: text
    sms: {template: demo-sms, purpose: reminder}
  - id: pause
    wait: {for: 7d}
`

// recheckEnv is a guardEnv at noon in Chicago with one SMS of the journey
// src queued for jane; it returns the message.
func recheckEnv(t *testing.T, s engine.Store, src string) (*env, *nudge.Message) {
	t.Helper()
	e := guardEnv(t, s, src)
	e.clock.Advance(9 * time.Hour) // 18:00 UTC, 12:00 in Chicago
	e.track("jane", "go", nil)
	e.run()
	var sms []*nudge.Message
	for _, m := range e.messages("jane") {
		if m.Channel == nudge.ChannelSMS && m.Status == nudge.MessageQueued {
			sms = append(sms, m)
		}
	}
	if len(sms) != 1 {
		t.Fatalf("queued SMS = %+v; want 1 (reasons %v)", sms, e.reasons("jane"))
	}
	return e, sms[0]
}

func (e *env) getContact(id string) *nudge.Contact {
	e.t.Helper()
	c, err := e.s.ContactGet(ctx, id)
	if err != nil {
		e.t.Fatalf("ContactGet: %v", err)
	}
	return c
}

// recheck re-checks m on the contact as stored now, with Recheck and
// with RecheckMany of m alone (given its enrollment as read, as delivery
// does, unless the read fails), and checks each answer and, when not ok,
// the decision it recorded.
func (e *env) recheck(m *nudge.Message, wantOK bool, wantReason, wantSentence string) {
	e.t.Helper()
	ways := map[string]func(*nudge.Contact) (bool, string){
		"Recheck": func(c *nudge.Contact) (bool, string) { return e.eng.Recheck(ctx, m, c) },
		"RecheckMany": func(c *nudge.Contact) (bool, string) {
			ens, err := e.s.EnrollmentGetMany(ctx, []string{m.EnrollmentID})
			if err != nil {
				ens = nil // RecheckMany reads them, and fails as the store does
			}
			r := e.eng.RecheckMany(ctx, []*nudge.Message{m}, map[string]*nudge.Contact{m.ContactID: c}, ens)
			return r[0] == "", r[0]
		},
	}
	for _, name := range []string{"Recheck", "RecheckMany"} {
		before := len(e.decisions(m.ContactID))
		ok, reason := ways[name](e.getContact(m.ContactID))
		if ok != wantOK || reason != wantReason {
			e.t.Fatalf("%s = %v, %q; want %v, %q", name, ok, reason, wantOK, wantReason)
		}
		ds := e.decisions(m.ContactID)
		if ok {
			if len(ds) != before {
				e.t.Errorf("an ok %s recorded %d decisions", name, len(ds)-before)
			}
			continue
		}
		if len(ds) != before+1 {
			e.t.Fatalf("a not-ok %s recorded %d decisions, want 1", name, len(ds)-before)
		}
		d := ds[len(ds)-1]
		if d.Outcome != nudge.OutcomeSkipped || d.Reason != wantReason || d.EnrollmentID != m.EnrollmentID ||
			d.StepID != m.StepID || d.Channel != m.Channel || d.JourneyID != m.JourneyID || d.Details["message_id"] != m.ID ||
			!d.At.Equal(e.clock.Now()) {
			e.t.Errorf("%s: decision = %+v", name, d)
		}
		if !strings.Contains(d.Message, wantSentence) {
			e.t.Errorf("%s: decision says %q; want it to contain %q", name, d.Message, wantSentence)
		}
	}
}

func TestRecheck(t *testing.T) {
	// Each case runs on fresh stores.
	run := func(name string, f func(t *testing.T, s engine.Store)) {
		t.Run(name, func(t *testing.T) { stores(t, f) })
	}
	run("nothing changed", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.recheck(m, true, "", "")
	})
	run("quiet hours and caps were decided at queue time", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.clock.Advance(12 * time.Hour) // 00:00 in Chicago
		e.recheck(m, true, "", "")
	})
	run("opted out", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.clock.Advance(time.Minute)
		e.consent("jane", nudge.ConsentOptedOut)
		e.recheck(m, false, policy.ReasonOptedOut, "Not sent: the contact opted out (admin) after the SMS was queued.")
	})
	run("goal condition met", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		// The engine has not seen the change yet: the enrollment waits.
		e.contact(&nudge.ContactPatch{ID: "jane", Attributes: map[string]any{"booked": true}})
		e.recheck(m, false, engine.ReasonGoalMet, "Not sent: the contact converted (contact.attributes.booked == true is true) after the SMS was queued.")
	})
	run("converted", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.track("jane", "demo.booked", nil)
		e.run()
		if en := e.enrollments("jane")[0]; en.State != nudge.EnrollmentConverted {
			t.Fatalf("enrollment %s, want converted", en.State)
		}
		e.recheck(m, false, engine.ReasonGoalMet, "Not sent: the contact converted (demo.booked) after the SMS was queued.")
	})
	run("exit rule true", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.contact(&nudge.ContactPatch{ID: "jane", Attributes: map[string]any{"churned": true}})
		e.recheck(m, false, engine.ReasonExitRule, "Not sent: the contact left the journey (exit rule contact.attributes.churned == true) after the SMS was queued.")
	})
	run("exited by the rule, which is false again", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.contact(&nudge.ContactPatch{ID: "jane", Attributes: map[string]any{"churned": true}})
		e.run()
		e.contact(&nudge.ContactPatch{ID: "jane", Attributes: map[string]any{"churned": false}})
		if en := e.enrollments("jane")[0]; en.State != nudge.EnrollmentExited {
			t.Fatalf("enrollment %s, want exited", en.State)
		}
		e.recheck(m, false, engine.ReasonExitRule, "(exit rule contact.attributes.churned == true)")
	})
	run("completed", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, textJourney("done", 0, ""))
		if en := e.enrollments("jane")[0]; en.State != nudge.EnrollmentCompleted {
			t.Fatalf("enrollment %s, want completed", en.State)
		}
		e.recheck(m, true, "", "")
	})
	run("moved on to a later step", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.clock.Advance(7 * 24 * time.Hour)
		e.run()
		if en := e.enrollments("jane")[0]; en.State != nudge.EnrollmentCompleted {
			t.Fatalf("enrollment %s, want completed", en.State)
		}
		e.recheck(m, true, "", "")
	})
	run("ended by an exit step", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, "id: bye\ntrigger: {event: go}\nsteps:\n  - id: text\n    sms: {template: t, purpose: reminder}\n  - id: out\n    exit: {}\n")
		if en := e.enrollments("jane")[0]; en.State != nudge.EnrollmentExited {
			t.Fatalf("enrollment %s, want exited", en.State)
		}
		e.recheck(m, true, "", "")
	})
	run("suppressed", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		if _, err := s.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{{Channel: nudge.ChannelSMS, Address: "+13125550100", Reason: nudge.SuppressProviderOptOut, Source: "provider"}}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.recheck(m, false, policy.ReasonSuppressedPhone, "Not sent: the phone number was suppressed (provider_opt_out) after the SMS was queued.")
	})
	run("suppressed on another channel", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		if _, err := s.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{{Channel: nudge.ChannelEmail, Address: "jane@example.com", Reason: nudge.SuppressHardBounce, Source: "provider"}}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.recheck(m, true, "", "")
	})
	run("consent lookup fails", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.s = failingConsent{s}
		e.eng = e.newEngine()
		e.recheck(m, false, policy.ReasonConsentUnavailable, "consent database unreachable")
	})
	run("enrollment lookup fails", func(t *testing.T, s engine.Store) {
		e, m := recheckEnv(t, s, recheckJourney)
		e.s = failingEnrollment{s}
		e.eng = e.newEngine()
		e.recheck(m, false, policy.ReasonConsentUnavailable, "enrollments unreachable")
	})
}

// TestRecheckManyBatch re-checks a batch of three contacts' texts at once:
// each answer and decision is its own message's.
func TestRecheckManyBatch(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e, _ := recheckEnv(t, s, recheckJourney)
		for id, phone := range map[string]string{"joe": "+13125550201", "ann": "+13125550202"} {
			e.contact(&nudge.ContactPatch{ID: id, Phone: str(phone), Timezone: str("America/Chicago")})
			e.optIn(id)
			e.track(id, "go", nil)
		}
		e.run()
		e.clock.Advance(time.Minute)
		e.consent("joe", nudge.ConsentOptedOut)
		var ms []*nudge.Message
		cs := map[string]*nudge.Contact{}
		for _, id := range []string{"jane", "joe", "ann"} {
			for _, m := range e.messages(id) {
				if m.Channel == nudge.ChannelSMS && m.Status == nudge.MessageQueued {
					ms = append(ms, m)
				}
			}
			cs[id] = e.getContact(id)
		}
		cs["ann"] = nil // erased meanwhile
		if len(ms) != 3 {
			t.Fatalf("%d queued texts, want 3", len(ms))
		}
		got := e.eng.RecheckMany(ctx, ms, cs, nil)
		want := []string{"", policy.ReasonOptedOut, engine.ReasonContactErased}
		if !slices.Equal(got, want) {
			t.Errorf("RecheckMany of jane, joe, ann = %q, want %q", got, want)
		}
		for i, id := range []string{"jane", "joe", "ann"} {
			var skipped []string
			for _, d := range e.decisions(id) {
				if d.Details["stage"] == "dispatch" {
					skipped = append(skipped, d.Reason)
					if d.Details["message_id"] != ms[i].ID {
						t.Errorf("%s's dispatch decision names message %v, want %s", id, d.Details["message_id"], ms[i].ID)
					}
				}
			}
			if w := []string{want[i]}; want[i] == "" && len(skipped) != 0 || want[i] != "" && !slices.Equal(skipped, w) {
				t.Errorf("%s's dispatch decisions = %q, want %q", id, skipped, want[i])
			}
		}
	})
}

// failingEnrollment is a store whose enrollment reads fail.
type failingEnrollment struct{ engine.Store }

func (failingEnrollment) EnrollmentGet(context.Context, string) (*nudge.Enrollment, error) {
	return nil, errors.New("enrollments unreachable")
}

func (failingEnrollment) EnrollmentGetMany(context.Context, []string) (map[string]*nudge.Enrollment, error) {
	return nil, errors.New("enrollments unreachable")
}
