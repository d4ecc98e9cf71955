package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testReport(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	rs, ok := s.(nudge.ReportStore)
	if !ok {
		t.Fatalf("%T does not implement nudge.ReportStore", s)
	}
	mustPut(t, s, now, &nudge.Contact{ID: "c3", Phone: "+13125550100"})
	h := time.Hour
	// e1: email at intro, SMS at text (clicked, then STOP), converted at 3h.
	e1 := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c3", State: nudge.EnrollmentWaiting, StepID: "text", EnteredAt: now}
	d := func(e *nudge.Enrollment, at time.Time, step, channel, outcome, reason string) *nudge.Decision {
		return &nudge.Decision{At: at, ContactID: e.ContactID, JourneyID: "j", Version: 1, EnrollmentID: e.ID,
			StepID: step, Channel: channel, Outcome: outcome, Reason: reason, Message: reason}
	}
	m1, m2 := message("m1", e1, "intro"), message("m2", e1, "text")
	m2.Channel = nudge.ChannelSMS
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}, Messages: []*nudge.Message{m1},
		Decisions: []*nudge.Decision{d(e1, now, "", "", nudge.OutcomeEntered, "entered_event"),
			d(e1, now, "intro", nudge.ChannelEmail, nudge.OutcomeSent, "queued")}})
	e1 = mustEnrollment(t, s, "e1")
	mustCommit(t, s, now.Add(h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}, Messages: []*nudge.Message{m2},
		Decisions: []*nudge.Decision{d(e1, now.Add(h), "text", nudge.ChannelSMS, nudge.OutcomeDeferred, "quiet_hours"),
			d(e1, now.Add(h), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued")}})
	mustIngest(t, s, now.Add(2*h), track("ev1", "c3", "sms.clicked", 120, map[string]any{"message_id": "m2"}),
		track("ev2", "c3", "sms.clicked", 121, map[string]any{"message_id": "m2"}),
		track("ev3", "c3", "email.clicked", 122, map[string]any{"message_id": "nope"}))
	mustRecord(t, s, now.Add(2*h), &nudge.ConsentRecordParams{ContactID: "c3", Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: now.Add(2 * h)})
	e1 = mustEnrollment(t, s, "e1")
	e1.State, e1.StepID, e1.EndedAt = nudge.EnrollmentConverted, "", now.Add(3*h)
	mustCommit(t, s, now.Add(3*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1},
		Decisions: []*nudge.Decision{d(e1, now.Add(3*h), "", "", nudge.OutcomeConverted, "goal_met")}})
	// e2: held out at text, completed. e3: entered two days later, waiting.
	e2 := &nudge.Enrollment{ID: "e2", JourneyID: "j", Version: 1, ContactID: "c2", State: nudge.EnrollmentCompleted,
		HeldOut: true, EnteredAt: now, EndedAt: now.Add(h)}
	e3 := waiting("e3", "j", "c1", now.Add(72*h))
	e3.EnteredAt = now.Add(48 * h)
	mustCommit(t, s, now.Add(48*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e2, e3},
		Decisions: []*nudge.Decision{d(e2, now, "text", nudge.ChannelSMS, nudge.OutcomeHeldOut, "held_out"),
			d(e2, now.Add(h), "", "", nudge.OutcomeCompleted, "completed"),
			d(e3, now.Add(48*h), "", "", nudge.OutcomeEntered, "entered_event")}})

	got, err := rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j", Version: 1, From: now, To: now.Add(24 * h)})
	if err != nil {
		t.Fatalf("ReportJourney: %v", err)
	}
	want := &nudge.ReportData{
		Cohorts: []nudge.ReportCohort{{State: "converted", Reason: "goal_met", Count: 1}, {HeldOut: true, State: "completed", Reason: "completed", Count: 1}},
		Outcomes: []nudge.ReportOutcome{
			{StepID: "", Outcome: "completed", Reason: "completed", Decisions: 1, Enrollments: 1},
			{StepID: "", Outcome: "converted", Reason: "goal_met", Decisions: 1, Enrollments: 1},
			{StepID: "", Outcome: "entered", Reason: "entered_event", Decisions: 1, Enrollments: 1},
			{StepID: "intro", Channel: "email", Outcome: "sent", Reason: "queued", Decisions: 1, Enrollments: 1},
			{StepID: "text", Channel: "sms", Outcome: "deferred", Reason: "quiet_hours", Decisions: 1, Enrollments: 1},
			{StepID: "text", Channel: "sms", Outcome: "held_out", Reason: "held_out", Decisions: 1, Enrollments: 1},
			{StepID: "text", Channel: "sms", Outcome: "sent", Reason: "queued", Decisions: 1, Enrollments: 1},
		},
		Paths: []nudge.ReportPath{{StepID: "intro", Sent: true, Converted: true, Count: 1},
			{StepID: "text", StepHeldOut: true, JourneyHeldOut: true, Count: 1}, {StepID: "text", Sent: true, Converted: true, Count: 1}},
		Messages: []nudge.ReportMessages{{StepID: "intro", Channel: "email", Status: "queued", Count: 1}, {StepID: "text", Channel: "sms", Status: "queued", Count: 1}},
		Actions:  []nudge.ReportAction{{StepID: "text", Channel: "sms", Name: "sms.clicked", Messages: 1}},
		OptOuts:  []nudge.ReportOptOut{{StepID: "text", Sent: 1, OptedOut: 1}},
		Conversions: []nudge.ReportConversion{{EnteredAt: now, ConvertedAt: now.Add(3 * h), Steps: []string{"intro", "text"},
			Touches: []nudge.ReportTouch{{StepID: "intro", Channel: "email", At: now}, {StepID: "text", Channel: "sms", At: now.Add(h)}}}},
	}
	if d := diff(want, got); d != "" {
		t.Errorf("ReportJourney (-want +got):\n%s", d)
	}
	all, err := rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j"})
	if err != nil {
		t.Fatalf("ReportJourney: %v", err)
	}
	if n := len(all.Cohorts); n != 3 {
		t.Errorf("ReportJourney without a range: %d cohorts, want 3 (e3 waiting too)", n)
	}
	_, err = rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "nope"})
	wantCode(t, "ReportJourney(nope)", err, nudge.ENOTFOUND)
	_, err = rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j", From: now, To: now})
	wantCode(t, "ReportJourney(To = From)", err, nudge.EINVALID)

	o, err := rs.ReportOverview(ctx, &nudge.ReportParams{From: now, To: now.Add(24 * h)})
	if err != nil {
		t.Fatalf("ReportOverview: %v", err)
	}
	wantO := &nudge.ReportOverviewData{
		Journeys: []nudge.ReportJourneyCounts{{JourneyID: "j", Entered: 2, Converted: 1, HeldOut: 1, SMSSent: 1, SMSOptedOut: 1}},
		PerWeek:  []nudge.ReportWeekBucket{{Messages: 2, Contacts: 1}},
	}
	if d := diff(wantO, o); d != "" {
		t.Errorf("ReportOverview (-want +got):\n%s", d)
	}
}
