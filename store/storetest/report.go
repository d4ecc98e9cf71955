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
	mustPut(t, s, now, &nudge.Contact{ID: "c3", Phone: "+13125550100", Email: "cy@example.com"})
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
		track("ev3", "c3", "email.clicked", 122, map[string]any{"message_id": "nope"}),
		track("ev4", "c3", "email.complained", 123, map[string]any{"message_id": "m1"}))
	// The complaint opts the address out of marketing email (provider):
	// within 72 h of the intro email, so it counts as its unsubscribe.
	mustRecord(t, s, now.Add(2*h), &nudge.ConsentRecordParams{ContactID: "c3", Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedOut, Source: nudge.SourceProvider, OccurredAt: now.Add(2 * h)})
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
		Actions: []nudge.ReportAction{{StepID: "intro", Channel: "email", Name: "email.complained", Messages: 1},
			{StepID: "text", Channel: "sms", Name: "sms.clicked", Messages: 1}},
		OptOuts: []nudge.ReportOptOut{{StepID: "intro", Channel: "email", Sent: 1, OptedOut: 1}, {StepID: "text", Channel: "sms", Sent: 1, OptedOut: 1}},
		// m2 was queued at now+1h and first clicked at 02:00 (minute 120).
		ActionDelays: []nudge.ReportActionDelay{{StepID: "text", Channel: "sms", Action: "click", Minutes: 60, Count: 1}},
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
		Journeys: []nudge.ReportJourneyCounts{{JourneyID: "j", Entered: 2, Converted: 1, HeldOut: 1, SMSSent: 1, SMSOptedOut: 1,
			EmailSent: 1, EmailUnsubscribed: 1, EmailComplained: 1}},
		PerWeek: []nudge.ReportWeekBucket{{Messages: 2, Contacts: 1}},
	}
	if d := diff(wantO, o); d != "" {
		t.Errorf("ReportOverview (-want +got):\n%s", d)
	}
}

func testStepPause(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	h := time.Hour
	mustPut(t, s, now, &nudge.Contact{ID: "c3", Phone: "+13125550100"}, &nudge.Contact{ID: "c4", Phone: "+13125550101"})
	// Texts at step text: c4's at now, c3's at now+1h; c3 opts out (STOP)
	// an hour after its text, c4 thirty hours after (too late to count).
	e1, e3 := waiting("e1", "j", "c4", now.Add(48*h)), waiting("e3", "j", "c3", now.Add(48*h))
	m1, m3 := message("m1", e1, "text"), message("m3", e3, "text")
	m1.Channel, m3.Channel = nudge.ChannelSMS, nudge.ChannelSMS
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}, Messages: []*nudge.Message{m1}})
	mustCommit(t, s, now.Add(h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e3}, Messages: []*nudge.Message{m3}})
	stop := func(contact string, at time.Time) *nudge.ConsentRecordParams {
		return &nudge.ConsentRecordParams{ContactID: contact, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: at}
	}
	mustRecord(t, s, now.Add(2*h), stop("c3", now.Add(2*h)))
	mustRecord(t, s, now.Add(30*h), stop("c4", now.Add(30*h)))
	// A second opt-out of c3 (the provider's) counts its text once.
	second := stop("c3", now.Add(3*h))
	second.Source = nudge.SourceProvider
	mustRecord(t, s, now.Add(3*h), second)

	got, err := s.StepOptOutCounts(ctx, now.Add(-h), now.Add(48*h))
	if err != nil {
		t.Fatalf("StepOptOutCounts: %v", err)
	}
	want := []nudge.StepOptOutCount{{JourneyID: "j", StepID: "text", Since: now.Add(-h), Sent: 2, OptedOut: 1}}
	if d := diff(want, got); d != "" {
		t.Errorf("StepOptOutCounts (-want +got):\n%s", d)
	}
	// The range bounds the texts counted: from now+30m, only c3's.
	got, err = s.StepOptOutCounts(ctx, now.Add(30*time.Minute), now.Add(48*h))
	if err != nil {
		t.Fatalf("StepOptOutCounts: %v", err)
	}
	if d := diff([]nudge.StepOptOutCount{{JourneyID: "j", StepID: "text", Since: now.Add(30 * time.Minute), Sent: 1, OptedOut: 1}}, got); d != "" {
		t.Errorf("StepOptOutCounts from now+30m (-want +got):\n%s", d)
	}

	p := &nudge.StepPause{JourneyID: "j", StepID: "text", Reason: "step_paused_optout_rate", Sent: 2, OptedOut: 1,
		Rate: 0.5, Threshold: 0.02, MinSends: 2, Since: now.Add(-h), PausedAt: now.Add(3 * h)}
	if ok, err := s.StepPausePut(ctx, p); err != nil || !ok {
		t.Fatalf("StepPausePut = %v, %v; want true, nil", ok, err)
	}
	again := *p
	again.PausedAt = now.Add(4 * h)
	if ok, err := s.StepPausePut(ctx, &again); err != nil || ok {
		t.Errorf("StepPausePut of a paused step = %v, %v; want false, nil", ok, err)
	}
	_, err = s.StepPausePut(ctx, &nudge.StepPause{JourneyID: "j", Reason: "x", PausedAt: now})
	wantCode(t, "StepPausePut without a step", err, nudge.EINVALID)
	active, err := s.StepPauseActive(ctx, "j", "text")
	if err != nil {
		t.Fatalf("StepPauseActive: %v", err)
	}
	if d := diff(p, active); d != "" {
		t.Errorf("StepPauseActive (-want +got):\n%s", d)
	}
	_, err = s.StepPauseActive(ctx, "j", "intro")
	wantCode(t, "StepPauseActive of a step not paused", err, nudge.ENOTFOUND)
	for _, lp := range []nudge.StepPauseListParams{{Active: true}, {JourneyID: "j", Active: true}} {
		list, err := s.StepPauseList(ctx, &lp)
		if err != nil || len(list) != 1 || list[0].StepID != "text" {
			t.Errorf("StepPauseList(%+v) = %v, %v; want the pause of text", lp, list, err)
		}
	}
	if list, err := s.StepPauseList(ctx, &nudge.StepPauseListParams{JourneyID: "other"}); err != nil || len(list) != 0 {
		t.Errorf("StepPauseList of another journey = %v, %v; want none", list, err)
	}

	// Resuming ends the pause, keeps it as history, and restarts the count.
	res, err := s.StepResume(ctx, "j", "text", "admin:ann", now.Add(5*h))
	if err != nil {
		t.Fatalf("StepResume: %v", err)
	}
	want1 := *p
	want1.ResumedAt, want1.ResumedBy = now.Add(5*h), "admin:ann"
	if d := diff(&want1, res); d != "" {
		t.Errorf("StepResume (-want +got):\n%s", d)
	}
	_, err = s.StepResume(ctx, "j", "text", "admin:ann", now.Add(6*h))
	wantCode(t, "StepResume of a step not paused", err, nudge.ENOTFOUND)
	if list, err := s.StepPauseList(ctx, &nudge.StepPauseListParams{Active: true}); err != nil || len(list) != 0 {
		t.Errorf("StepPauseList active after resume = %v, %v; want none", list, err)
	}
	hist, err := s.StepPauseList(ctx, &nudge.StepPauseListParams{JourneyID: "j"})
	if err != nil || len(hist) != 1 || hist[0].Active() {
		t.Errorf("StepPauseList history = %v, %v; want the resumed pause", hist, err)
	}
	e1b := waiting("e4", "j", "c2", now.Add(48*h))
	m4 := message("m4", e1b, "text")
	m4.Channel = nudge.ChannelSMS
	mustCommit(t, s, now.Add(6*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1b}, Messages: []*nudge.Message{m4}})
	got, err = s.StepOptOutCounts(ctx, now.Add(-h), now.Add(48*h))
	if err != nil {
		t.Fatalf("StepOptOutCounts: %v", err)
	}
	if d := diff([]nudge.StepOptOutCount{{JourneyID: "j", StepID: "text", Since: now.Add(5 * h), Sent: 1}}, got); d != "" {
		t.Errorf("StepOptOutCounts after resume (-want +got):\n%s", d)
	}
	// A new pause may follow the resume.
	if ok, err := s.StepPausePut(ctx, &again); err != nil || !ok {
		t.Errorf("StepPausePut after resume = %v, %v; want true, nil", ok, err)
	}
}

// testReportStages: every path that changes a contact (the API's put and
// merge, identify, a journey's update_contact patch) leaves its stage
// changes for the report's CRM movement; changes before entry do not count.
func testReportStages(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	rs := s.(nudge.ReportStore)
	h, day := time.Hour, 24*time.Hour
	mustMerge(t, s, now.Add(-h), &nudge.ContactPatch{ID: "c1", LifecycleStage: ptr("lead")}) // before entry
	e1, e2 := waiting("e1", "j", "c1", now.Add(90*day)), waiting("e2", "j", "c2", now.Add(90*day))
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2}})
	mustMerge(t, s, now.Add(h), &nudge.ContactPatch{ID: "c1", LifecycleStage: ptr("customer"), JourneyStage: ptr("trial")})
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "c2", LifecycleStage: "customer"}, now.Add(2*h)); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, now.Add(3*h), &nudge.EngineCommit{ContactPatches: []*nudge.ContactPatch{{ID: "c1", JourneyStage: ptr("evaluating")}},
		Decisions: []*nudge.Decision{{At: now.Add(3 * h), ContactID: "c1", JourneyID: "j", Version: 1, EnrollmentID: "e1", StepID: "set",
			Outcome: nudge.OutcomeUpdated, Reason: "contact_updated", Message: "Updated the contact: journey_stage = evaluating (step set)."}}})
	mustIngest(t, s, now.Add(4*h), identify("id1", "c1", 240, &nudge.ContactPatch{JourneyStage: ptr("onboarding"), LifecycleStage: ptr("customer")}))
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "c2", LifecycleStage: "opportunity"}, now.Add(40*day)); err != nil {
		t.Fatal(err)
	}
	got, err := rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j"})
	if err != nil {
		t.Fatalf("ReportJourney: %v", err)
	}
	wantStages := []nudge.ReportStageMove{
		{Field: "journey_stage", From: "", To: "trial", Changes: 1, Enrollments: 1},
		{Field: "journey_stage", From: "evaluating", To: "onboarding", Changes: 1, Enrollments: 1},
		{Field: "journey_stage", From: "trial", To: "evaluating", Changes: 1, Enrollments: 1},
		{Field: "lifecycle_stage", From: "", To: "customer", Changes: 1, Enrollments: 1},
		{Field: "lifecycle_stage", From: "customer", To: "opportunity", Changes: 1, Enrollments: 1},
		{Field: "lifecycle_stage", From: "lead", To: "customer", Changes: 1, Enrollments: 1},
	}
	if d := diff(wantStages, got.Stages); d != "" {
		t.Errorf("Stages (-want +got):\n%s", d)
	}
	wantCustomers := []nudge.ReportCustomer{{BecameAt: now.Add(h)}, {BecameAt: now.Add(2 * h), LeftAt: now.Add(40 * day)}}
	if d := diff(wantCustomers, got.Customers); d != "" {
		t.Errorf("Customers (-want +got):\n%s", d)
	}
	// Each change, with what made it.
	hist, err := rs.ContactStageList(ctx, "c1")
	if err != nil {
		t.Fatalf("ContactStageList: %v", err)
	}
	wantHist := []*nudge.ContactStageChange{
		{Field: "lifecycle_stage", From: "", To: "lead", At: now.Add(-h), Source: "api"},
		{Field: "lifecycle_stage", From: "lead", To: "customer", At: now.Add(h), Source: "api"},
		{Field: "journey_stage", From: "", To: "trial", At: now.Add(h), Source: "api"},
		{Field: "journey_stage", From: "trial", To: "evaluating", At: now.Add(3 * h), Source: "journey:j"},
		{Field: "journey_stage", From: "evaluating", To: "onboarding", At: now.Add(4 * h), Source: "identify"},
	}
	if d := diff(wantHist, hist); d != "" {
		t.Errorf("ContactStageList(c1) (-want +got):\n%s", d)
	}
	if hist, err := rs.ContactStageList(ctx, "nobody"); err != nil || len(hist) != 0 {
		t.Errorf("ContactStageList(nobody) = %v, %v; want none", hist, err)
	}
	// An enrollment that entered later does not count the changes before.
	later, err := rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j", From: now.Add(h)})
	if err != nil {
		t.Fatal(err)
	}
	if len(later.Stages) != 0 || len(later.Customers) != 0 {
		t.Errorf("a cohort with no one: stages %v, customers %v", later.Stages, later.Customers)
	}
}
