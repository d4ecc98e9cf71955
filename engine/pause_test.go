package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/policy"
)

// TestOptOutPause: 200 texts from one step, then STOPs within 24 hours.
// Four (2%) do not pause it; the fifth (2.5%) does: the next contact's text
// is skipped with step_paused_optout_rate, a text still queued is stopped at
// dispatch, and after an admin resumes the step it sends again.
func TestOptOutPause(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := guardEnv(t, s, textJourney("remind", 0, ""))
		e.clock.Advance(6 * time.Hour) // 09:00 in Chicago: no quiet hours
		var ids []string
		for i := range 200 {
			id := fmt.Sprintf("c%03d", i)
			ids = append(ids, id)
			e.contact(&nudge.ContactPatch{ID: id, Phone: str(fmt.Sprintf("+1312555%04d", i)), Timezone: str("America/Chicago")})
			e.optIn(id)
			e.track(id, "go", nil)
		}
		e.run()
		for _, id := range ids {
			if n := len(e.sms(id)); n != 1 {
				t.Fatalf("%s has %d texts, want 1", id, n)
			}
		}
		e.clock.Advance(time.Hour)
		stop := func(id string) {
			t.Helper()
			rs, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: id, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
				Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: e.clock.Now()}}, e.clock.Now())
			if err == nil {
				err = rs[0].Err
			}
			if err != nil {
				t.Fatalf("STOP from %s: %v", id, err)
			}
		}
		for _, id := range ids[:4] {
			stop(id)
		}
		if got, err := e.eng.CheckOptOutPauses(ctx); err != nil || len(got) != 0 {
			t.Fatalf("after 4 STOPs of 200 (2%%): CheckOptOutPauses = %v, %v; want no pause", got, err)
		}
		stop(ids[4])
		got, err := e.eng.CheckOptOutPauses(ctx)
		if err != nil || len(got) != 1 {
			t.Fatalf("after 5 STOPs of 200: CheckOptOutPauses = %v, %v; want one pause", got, err)
		}
		if p := got[0]; p.JourneyID != "remind" || p.StepID != "text" || p.Sent != 200 || p.OptedOut != 5 || p.Threshold != 0.02 || !p.PausedAt.Equal(e.clock.Now()) {
			t.Errorf("pause = %+v; want remind/text, 5 of 200 over 2%%, now", p)
		}
		if again, err := e.eng.CheckOptOutPauses(ctx); err != nil || len(again) != 0 {
			t.Errorf("a second check = %v, %v; want nothing new (the step is paused already)", again, err)
		}

		// The next contact's text is skipped, with the reason.
		e.track("jane", "go", nil)
		e.run()
		ds := e.at("jane", "text")
		if len(ds) != 1 || ds[0].Outcome != nudge.OutcomeSkipped || ds[0].Reason != policy.ReasonStepPausedOptOutRate {
			t.Fatalf("jane's decisions at text = %v, want skipped step_paused_optout_rate", reasons(ds))
		}
		if len(e.sms("jane")) != 0 {
			t.Errorf("jane got a text from a paused step")
		}
		// A text queued before the pause is stopped at dispatch.
		m := e.sms(ids[10])[0]
		c, err := s.ContactGet(ctx, ids[10])
		if err != nil {
			t.Fatal(err)
		}
		if ok, reason := e.eng.Recheck(ctx, m, c); ok || reason != policy.ReasonStepPausedOptOutRate {
			t.Errorf("Recheck of a queued text of the paused step = %v, %q; want not ok, %s", ok, reason, policy.ReasonStepPausedOptOutRate)
		}

		// An admin resumes it: the next contact gets the text, and the
		// check starts counting afresh.
		e.clock.Advance(time.Hour)
		if _, err := s.StepResume(ctx, "remind", "text", "admin", e.clock.Now()); err != nil {
			t.Fatalf("StepResume: %v", err)
		}
		e.contact(&nudge.ContactPatch{ID: "joe", Phone: str("+13125559999"), Timezone: str("America/Chicago")})
		e.optIn("joe")
		e.track("joe", "go", nil)
		e.run()
		if ds := e.at("joe", "text"); len(ds) != 1 || ds[0].Outcome != nudge.OutcomeSent {
			t.Errorf("joe's decisions at text after resume = %v, want sent (queued)", reasons(ds))
		}
		if len(e.sms("joe")) != 1 {
			t.Errorf("joe has %d texts after resume, want 1", len(e.sms("joe")))
		}
		if again, err := e.eng.CheckOptOutPauses(ctx); err != nil || len(again) != 0 {
			t.Errorf("check after resume = %v, %v; want no pause (1 text since)", again, err)
		}
	})
}

// TestOptOutPauseFromPolicy: the threshold is the published policy's
// opt_out_pause, and false turns the pause off.
func TestOptOutPauseFromPolicy(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := guardEnv(t, s, textJourney("remind", 0, ""))
		e.clock.Advance(6 * time.Hour)
		for i := range 10 {
			id := fmt.Sprintf("c%02d", i)
			e.contact(&nudge.ContactPatch{ID: id, Phone: str(fmt.Sprintf("+1312555%04d", i)), Timezone: str("America/Chicago")})
			e.optIn(id)
			e.track(id, "go", nil)
		}
		e.run()
		e.clock.Advance(time.Hour)
		for _, id := range []string{"c00", "c01"} {
			if _, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: id, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
				Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: e.clock.Now()}}, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		// The shipped default needs 200 texts: 2 STOPs in 10 pause nothing.
		if got, err := e.eng.CheckOptOutPauses(ctx); err != nil || len(got) != 0 {
			t.Fatalf("default policy: CheckOptOutPauses = %v, %v; want none", got, err)
		}
		publish := func(src string) {
			t.Helper()
			if _, _, err := s.PolicyPublish(ctx, []byte(src), "", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		publish(guardPolicy + "opt_out_pause: false\n")
		if got, err := e.eng.CheckOptOutPauses(ctx); err != nil || len(got) != 0 {
			t.Fatalf("opt_out_pause false: CheckOptOutPauses = %v, %v; want none", got, err)
		}
		publish(guardPolicy + "opt_out_pause: {rate: 15%, min_sends: 10}\n")
		got, err := e.eng.CheckOptOutPauses(ctx)
		if err != nil || len(got) != 1 || got[0].Sent != 10 || got[0].OptedOut != 2 || got[0].Threshold != 0.15 || got[0].MinSends != 10 {
			t.Fatalf("rate 15%%, 10 texts: CheckOptOutPauses = %+v, %v; want one pause, 2 of 10 over 15%%", got, err)
		}
	})
}
