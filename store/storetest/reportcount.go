package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// testReportCounts: after a mixed sequence of writes — enrollments entered,
// moved and ended, a decision repeated, messages delivered through status
// updates (several times in one call, back to where it was, refused),
// cancelled when their enrollment exits or by an update, an enrollment entered
// already ended, a contact erased, a second journey version — the report's
// counts (kept per day by the store) equal a direct count of the
// enrollments, the decision log and the outbox, over every range: the whole
// history, a range whose ends cut days, and one version; the overview's row
// of the journey counts the same.
func testReportCounts(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	rs := s.(nudge.ReportStore)
	h := time.Hour
	mustPublish(t, s, now, "j", "id: j\nname: two\n")
	for _, c := range []string{"c3", "c4", "c5", "c6", "c7"} {
		mustPut(t, s, now, &nudge.Contact{ID: c, Phone: "+1312555010" + c[1:], Email: c + "@example.com"})
	}
	d := func(e *nudge.Enrollment, at time.Time, step, channel, outcome, reason string) *nudge.Decision {
		return &nudge.Decision{At: at, ContactID: e.ContactID, JourneyID: "j", Version: e.Version, EnrollmentID: e.ID,
			StepID: step, Channel: channel, Outcome: outcome, Reason: reason, Message: reason}
	}
	msg := func(id string, e *nudge.Enrollment, step, channel string) *nudge.Message {
		m := message(id, e, step)
		m.Channel = channel
		return m
	}
	enter := func(id, contact string, version int64, at time.Time) *nudge.Enrollment {
		e := waiting(id, "j", contact, at.Add(h))
		e.Version, e.EnteredAt = version, at
		return e
	}
	update := func(t *testing.T, ms ...*nudge.MessageUpdate) {
		t.Helper()
		if _, err := s.MessageUpdate(ctx, ms, now.Add(3*h)); err != nil {
			t.Fatalf("MessageUpdate: %v", err)
		}
	}
	// Epoch is 09:00 UTC: e1–e3 enter on its day, e4, e5 and e7 (version
	// 2) on the next, e6 on the day after.
	e1, e2, e3 := enter("e1", "c1", 1, now), enter("e2", "c2", 1, now.Add(2*h)), enter("e3", "c3", 1, now.Add(4*h))
	mustCommit(t, s, now.Add(4*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2, e3},
		Messages: []*nudge.Message{msg("m1", e1, "intro", nudge.ChannelEmail), msg("m3", e3, "intro", nudge.ChannelEmail)},
		Decisions: []*nudge.Decision{d(e1, now, "", "", nudge.OutcomeEntered, "entered_event"),
			d(e1, now, "intro", nudge.ChannelEmail, nudge.OutcomeSent, "queued"),
			d(e2, now.Add(2*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e2, now.Add(2*h), "intro", nudge.ChannelEmail, nudge.OutcomeHeldOut, "held_out"),
			d(e3, now.Add(4*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e3, now.Add(4*h), "intro", nudge.ChannelEmail, nudge.OutcomeSent, "queued")}})
	// e1's text is deferred twice for the same reason, then sent (its
	// intro email again with it, skipped for its idempotency key); its
	// email is delivered, its text sent then delivered.
	e1 = mustEnrollment(t, s, "e1")
	mustCommit(t, s, now.Add(5*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1},
		Messages: []*nudge.Message{msg("m1again", e1, "intro", nudge.ChannelEmail), msg("m2", e1, "text", nudge.ChannelSMS)},
		Decisions: []*nudge.Decision{d(e1, now.Add(h), "text", nudge.ChannelSMS, nudge.OutcomeDeferred, "quiet_hours"),
			d(e1, now.Add(2*h), "text", nudge.ChannelSMS, nudge.OutcomeDeferred, "quiet_hours"),
			d(e1, now.Add(5*h), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued")}})
	update(t, &nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageSending}, &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSending})
	update(t, &nudge.MessageUpdate{MessageID: "m1", Status: nudge.MessageDelivered}, &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageSent})
	update(t, &nudge.MessageUpdate{MessageID: "m2", Status: nudge.MessageDelivered})
	// The STOP changes no count kept per day.
	mustRecord(t, s, now.Add(6*h), &nudge.ConsentRecordParams{ContactID: "c3", Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, OccurredAt: now.Add(6 * h)})
	// e1 converts; e2 (in the holdout) completes; e3 exits, its queued
	// email cancelled, and with it the one its exit queues.
	e1, e2, e3 = mustEnrollment(t, s, "e1"), mustEnrollment(t, s, "e2"), mustEnrollment(t, s, "e3")
	e1.State, e1.EndedAt = nudge.EnrollmentConverted, now.Add(8*h)
	e2.State, e2.HeldOut, e2.EndedAt = nudge.EnrollmentCompleted, true, now.Add(8*h)
	e3.State, e3.EndedAt = nudge.EnrollmentExited, now.Add(8*h)
	mustCommit(t, s, now.Add(8*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2, e3}, CancelMessages: []string{"e3"},
		Messages: []*nudge.Message{msg("m3b", e3, "bye", nudge.ChannelEmail)},
		Decisions: []*nudge.Decision{d(e1, now.Add(8*h), "", "", nudge.OutcomeConverted, "goal_met"),
			d(e2, now.Add(8*h), "", "", nudge.OutcomeCompleted, "completed"),
			d(e3, now.Add(8*h), "", "", nudge.OutcomeExited, "unsubscribed")}})
	// The next day: e4 converts after a text and is erased; e5 enters
	// already converted, with its decisions in the same commit; e7 runs
	// version 2 and converts.
	e4, e7 := enter("e4", "c4", 1, now.Add(20*h)), enter("e7", "c7", 2, now.Add(22*h))
	e5 := enter("e5", "c5", 1, now.Add(26*h))
	e5.State, e5.EndedAt = nudge.EnrollmentConverted, now.Add(27*h)
	mustCommit(t, s, now.Add(27*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e4, e5, e7},
		Messages: []*nudge.Message{msg("m4", e4, "text", nudge.ChannelSMS), msg("m5", e5, "intro", nudge.ChannelEmail),
			msg("m7b", e7, "intro", nudge.ChannelEmail), msg("m7", e7, "text", nudge.ChannelSMS)},
		Decisions: []*nudge.Decision{d(e4, now.Add(20*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e4, now.Add(20*h), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued"),
			d(e5, now.Add(26*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e5, now.Add(26*h), "intro", nudge.ChannelEmail, nudge.OutcomeSent, "queued"),
			d(e5, now.Add(26*h), "text", nudge.ChannelSMS, nudge.OutcomeSkipped, "no_consent"),
			d(e5, now.Add(27*h), "", "", nudge.OutcomeConverted, "goal_met"),
			d(e7, now.Add(22*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e7, now.Add(22*h), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued")}})
	e4, e7 = mustEnrollment(t, s, "e4"), mustEnrollment(t, s, "e7")
	e4.State, e4.EndedAt = nudge.EnrollmentConverted, now.Add(28*h)
	e7.State, e7.EndedAt = nudge.EnrollmentConverted, now.Add(29*h)
	mustCommit(t, s, now.Add(29*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e4, e7},
		Decisions: []*nudge.Decision{d(e4, now.Add(28*h), "", "", nudge.OutcomeConverted, "goal_met"),
			d(e7, now.Add(29*h), "", "", nudge.OutcomeConverted, "goal_met")}})
	update(t, &nudge.MessageUpdate{MessageID: "m5", Status: nudge.MessageSending})
	update(t, &nudge.MessageUpdate{MessageID: "m5", Status: nudge.MessageFailed, Error: "550 no such user"})
	// e6 enters on the third day and waits, its text queued.
	e6 := enter("e6", "c6", 1, now.Add(40*h))
	mustCommit(t, s, now.Add(40*h), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e6},
		Messages: []*nudge.Message{msg("m6", e6, "text", nudge.ChannelSMS)},
		Decisions: []*nudge.Decision{d(e6, now.Add(40*h), "", "", nudge.OutcomeEntered, "entered_event"),
			d(e6, now.Add(40*h), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued")}})
	// m6 goes out in one call (sent, requeued, sent again, then sent); m7
	// is sent and requeued in one call, back where it was; a call of
	// updates that are all refused changes nothing; e7 (converted) has its
	// queued email cancelled, which takes it out of its touches.
	update(t, &nudge.MessageUpdate{MessageID: "m6", Status: nudge.MessageSending}, &nudge.MessageUpdate{MessageID: "m6", Requeue: true},
		&nudge.MessageUpdate{MessageID: "m6", Status: nudge.MessageSending}, &nudge.MessageUpdate{MessageID: "m6", Status: nudge.MessageSent})
	update(t, &nudge.MessageUpdate{MessageID: "m7", Status: nudge.MessageSending}, &nudge.MessageUpdate{MessageID: "m7", Requeue: true})
	if applied, err := s.MessageUpdate(ctx, []*nudge.MessageUpdate{{MessageID: "m6", Status: nudge.MessageSending},
		{MessageID: "m2", Status: nudge.MessageSent}, {MessageID: "m6", Requeue: true}}, now.Add(3*h)); err != nil || slices.Contains(applied, true) {
		t.Fatalf("MessageUpdate of updates that do not advance: applied %v, %v; want none", applied, err)
	}
	update(t, &nudge.MessageUpdate{MessageID: "m7b", Status: nudge.MessageCancelled})
	if err := s.ContactErase(ctx, "c4", now.Add(41*h)); err != nil {
		t.Fatalf("ContactErase: %v", err)
	}

	for _, p := range []nudge.ReportParams{
		{JourneyID: "j"},
		{JourneyID: "j", From: now.Add(h), To: now.Add(41 * h)}, // 10:00 to 02:00 two days later
		{JourneyID: "j", From: now.Add(15 * h), To: now.Add(39 * h)},
		{JourneyID: "j", From: now.Add(3 * h), To: now.Add(5 * h)},
		{JourneyID: "j", Version: 1},
		{JourneyID: "j", Version: 2, From: now.Add(15 * h)},
	} {
		got, err := rs.ReportJourney(ctx, &p)
		if err != nil {
			t.Fatalf("ReportJourney(%+v): %v", p, err)
		}
		want := directCount(t, s, &p)
		// The overview's row of the journey counts the same (over every
		// version, as the overview does), its opt-outs as the report's.
		if p.Version == 0 {
			o, err := rs.ReportOverview(ctx, &nudge.ReportParams{From: p.From, To: p.To})
			if err != nil {
				t.Fatalf("ReportOverview(%+v): %v", p, err)
			}
			wantRow := nudge.ReportJourneyCounts{JourneyID: "j"}
			for _, c := range want.Cohorts {
				wantRow.Entered += c.Count
				if c.State == nudge.EnrollmentConverted {
					wantRow.Converted += c.Count
				}
				if c.HeldOut {
					wantRow.HeldOut += c.Count
					if c.State == nudge.EnrollmentConverted {
						wantRow.HeldOutConverted += c.Count
					}
				}
			}
			for _, m := range want.Messages {
				if m.Status != nudge.MessageCancelled && m.Channel == nudge.ChannelSMS {
					wantRow.SMSSent += m.Count
				} else if m.Status != nudge.MessageCancelled && m.Channel == nudge.ChannelEmail {
					wantRow.EmailSent += m.Count
				}
			}
			for _, x := range got.OptOuts {
				if x.Channel == nudge.ChannelSMS {
					wantRow.SMSOptedOut += x.OptedOut
				} else {
					wantRow.EmailUnsubscribed += x.OptedOut
				}
			}
			var gotRow nudge.ReportJourneyCounts
			for _, r := range o.Journeys {
				if r.JourneyID == "j" {
					gotRow = r
				}
			}
			if d := diff(wantRow, gotRow); d != "" {
				t.Errorf("ReportOverview(from %s to %s) against a direct count and the report's opt-outs (-want +got):\n%s",
					p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), d)
			}
		}
		got.Actions, got.OptOuts, got.ActionDelays, got.Stages, got.Customers = nil, nil, nil, nil, nil
		if d := diff(want, got); d != "" {
			t.Errorf("ReportJourney(from %s to %s, version %d) against a direct count (-want +got):\n%s",
				p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), p.Version, d)
		}
	}
	if all, err := rs.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "j"}); err != nil || len(all.Conversions) != 3 {
		t.Errorf("ReportJourney: %d conversions, %v; want 3 (e1, e5, e7; e4 erased)", len(all.Conversions), err)
	}
}

// directCount counts, from the enrollments, the decision log and the
// outbox as they list, what ReportJourney answers for p (without what
// follows messages and contacts: actions, opt-outs, stage changes).
func directCount(t *testing.T, s engineStore, p *nudge.ReportParams) *nudge.ReportData {
	t.Helper()
	in := map[string]*nudge.Enrollment{}
	for _, e := range mustEnrollments(t, s, &nudge.EnrollmentListParams{JourneyID: p.JourneyID, Limit: 10000}) {
		if (p.Version == 0 || e.Version == p.Version) && !e.EnteredAt.Before(p.From) && (p.To.IsZero() || e.EnteredAt.Before(p.To)) {
			in[e.ID] = e
		}
	}
	d := &nudge.ReportData{Cohorts: []nudge.ReportCohort{}, Outcomes: []nudge.ReportOutcome{}, Paths: []nudge.ReportPath{},
		Messages: []nudge.ReportMessages{}, Conversions: []nudge.ReportConversion{}}
	reason := map[string]string{}
	type outcomeKey struct{ step, channel, outcome, reason string }
	decisions, enrollments := map[outcomeKey]int64{}, map[outcomeKey]map[string]bool{}
	type pathKey struct{ enrollment, step string }
	paths := map[pathKey]*nudge.ReportPath{}
	steps := map[string][]string{}
	for _, x := range mustDecisions(t, s, &nudge.DecisionListParams{JourneyID: p.JourneyID, Limit: 10000}) {
		e := in[x.EnrollmentID]
		if e == nil {
			continue
		}
		if x.Outcome == nudge.OutcomeConverted || x.Outcome == nudge.OutcomeExited || x.Outcome == nudge.OutcomeCompleted {
			reason[e.ID] = x.Reason // the last, in id order
		}
		k := outcomeKey{x.StepID, x.Channel, x.Outcome, x.Reason}
		decisions[k]++
		if enrollments[k] == nil {
			enrollments[k] = map[string]bool{}
		}
		enrollments[k][e.ID] = true
		if x.StepID == "" {
			continue
		}
		pk := pathKey{e.ID, x.StepID}
		if paths[pk] == nil {
			paths[pk] = &nudge.ReportPath{StepID: x.StepID, JourneyHeldOut: e.HeldOut, Converted: e.State == nudge.EnrollmentConverted, Count: 1}
			steps[e.ID] = append(steps[e.ID], x.StepID)
		}
		paths[pk].Sent = paths[pk].Sent || x.Outcome == nudge.OutcomeSent
		paths[pk].StepHeldOut = paths[pk].StepHeldOut || x.Outcome == nudge.OutcomeHeldOut
	}
	for k, n := range decisions {
		d.Outcomes = append(d.Outcomes, nudge.ReportOutcome{StepID: k.step, Channel: k.channel, Outcome: k.outcome, Reason: k.reason,
			Decisions: n, Enrollments: int64(len(enrollments[k]))})
	}
	for _, r := range paths {
		d.Paths = append(d.Paths, *r)
	}
	for _, e := range in {
		d.Cohorts = append(d.Cohorts, nudge.ReportCohort{HeldOut: e.HeldOut, State: e.State, Reason: reason[e.ID], Count: 1})
	}
	touches := map[string][]nudge.ReportTouch{}
	ms := mustMessages(t, s, &nudge.MessageListParams{JourneyID: p.JourneyID, Limit: 10000})
	slices.SortStableFunc(ms, func(a, b *nudge.Message) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, m := range ms {
		if in[m.EnrollmentID] == nil {
			continue
		}
		d.Messages = append(d.Messages, nudge.ReportMessages{StepID: m.StepID, Channel: m.Channel, Status: m.Status, Count: 1})
		if m.Status != nudge.MessageCancelled {
			touches[m.EnrollmentID] = append(touches[m.EnrollmentID], nudge.ReportTouch{StepID: m.StepID, Channel: m.Channel, At: m.CreatedAt})
		}
	}
	d.SumCounts()
	var converted []*nudge.Enrollment // by entry, then id, as the store answers
	for _, e := range in {
		if e.State == nudge.EnrollmentConverted {
			converted = append(converted, e)
		}
	}
	slices.SortFunc(converted, func(a, b *nudge.Enrollment) int {
		return cmp.Or(a.EnteredAt.Compare(b.EnteredAt), cmp.Compare(a.ID, b.ID))
	})
	for _, e := range converted {
		c := nudge.ReportConversion{HeldOut: e.HeldOut, EnteredAt: e.EnteredAt, ConvertedAt: e.EndedAt, Touches: touches[e.ID]}
		if c.ConvertedAt.IsZero() {
			c.ConvertedAt = e.UpdatedAt
		}
		c.Steps = slices.Sorted(slices.Values(steps[e.ID]))
		d.Conversions = append(d.Conversions, c)
	}
	return d
}

// An update given its prior state (EngineCommit.Prior, as the drain gives
// the enrollments it read) stores the same as one without, and the report
// counters stay equal to a direct count: a store may take the state
// before from the prior (SQLite does) or read it (PostgreSQL does).
func testEnginePrior(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	rs := s.(nudge.ReportStore)
	h := time.Hour
	e1, e2 := waiting("e1", "j", "c1", now.Add(h)), waiting("e2", "j", "c2", now.Add(h))
	e2.HeldOut = true
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2},
		Decisions: []*nudge.Decision{decision(e1, nudge.OutcomeEntered, "entered_event"), decision(e2, nudge.OutcomeEntered, "entered_event")}})
	read, err := s.EnrollmentGetMany(ctx, []string{"e1", "e2"})
	if err != nil || len(read) != 2 {
		t.Fatalf("EnrollmentGetMany = %v, %v", read, err)
	}
	c := &nudge.EngineCommit{}
	for _, id := range []string{"e1", "e2"} {
		n := *read[id]
		n.State, n.WakeAt, n.EndedAt = nudge.EnrollmentConverted, time.Time{}, now.Add(h)
		if id == "e2" {
			n.State = nudge.EnrollmentCompleted
		}
		c.Enrollments = append(c.Enrollments, &n)
		c.Prior = append(c.Prior, read[id])
		c.Decisions = append(c.Decisions, &nudge.Decision{At: now.Add(h), ContactID: n.ContactID, JourneyID: "j", Version: 1,
			EnrollmentID: id, Outcome: n.State, Reason: "goal_met", Message: "The goal was met."})
	}
	c.Decisions[1].Reason = "completed"
	mustCommit(t, s, now.Add(h), c)
	for _, id := range []string{"e1", "e2"} {
		if got := mustEnrollment(t, s, id); got.State == nudge.EnrollmentWaiting || got.Rev != read[id].Rev+1 {
			t.Errorf("%s after the commit with its prior: state %s, rev %d; want ended at rev %d", id, got.State, got.Rev, read[id].Rev+1)
		}
	}
	p := &nudge.ReportParams{JourneyID: "j"}
	got, err := rs.ReportJourney(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	want := directCount(t, s, p)
	got.Actions, got.OptOuts, got.ActionDelays, got.Stages, got.Customers = nil, nil, nil, nil, nil
	if d := diff(want, got); d != "" {
		t.Errorf("ReportJourney after a commit with its prior, against a direct count (-want +got):\n%s", d)
	}
	if len(want.Cohorts) == 0 {
		t.Error("no cohort counted")
	}
}
