package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// waiting makes a waiting enrollment in version 1 of a journey, entered at now.
func waiting(id, journeyID, contactID string, wake time.Time) *nudge.Enrollment {
	return &nudge.Enrollment{ID: id, JourneyID: journeyID, Version: 1, ContactID: contactID,
		State: nudge.EnrollmentWaiting, StepID: "wait", WakeAt: wake, EnteredAt: now}
}

func decision(e *nudge.Enrollment, outcome, reason string) *nudge.Decision {
	return &nudge.Decision{At: now, ContactID: e.ContactID, JourneyID: e.JourneyID, Version: e.Version,
		EnrollmentID: e.ID, StepID: e.StepID, Outcome: outcome, Reason: reason,
		Message: "The engine decided " + outcome + " because " + reason + "."}
}

func message(msgID string, e *nudge.Enrollment, step string) *nudge.Message {
	return &nudge.Message{ID: msgID, EnrollmentID: e.ID, ContactID: e.ContactID, JourneyID: e.JourneyID,
		Version: e.Version, StepID: step, Channel: nudge.ChannelEmail, Template: step,
		Status: nudge.MessageQueued, IdempotencyKey: e.ID + "/" + step, AvailableAt: now}
}

// clone copies an enrollment as the engine would before changing it.
func clone(e *nudge.Enrollment) *nudge.Enrollment {
	c := *e
	return &c
}

func mustCommit(t testing.TB, s engineStore, at time.Time, c *nudge.EngineCommit) {
	t.Helper()
	if err := s.EngineCommit(ctx, c, at); err != nil {
		t.Fatalf("EngineCommit: %v", err)
	}
}

func mustEnrollment(t testing.TB, s engineStore, id string) *nudge.Enrollment {
	t.Helper()
	e, err := s.EnrollmentGet(ctx, id)
	if err != nil {
		t.Fatalf("EnrollmentGet(%s): %v", id, err)
	}
	return e
}

func mustClaimDue(t testing.TB, s engineStore, at time.Time, limit int) []*nudge.Enrollment {
	t.Helper()
	es, err := s.EnrollmentClaimDue(ctx, at, limit, lease)
	if err != nil {
		t.Fatalf("EnrollmentClaimDue: %v", err)
	}
	return es
}

func mustDecisions(t testing.TB, s engineStore, p *nudge.DecisionListParams) []*nudge.Decision {
	t.Helper()
	ds, err := s.DecisionList(ctx, p)
	if err != nil {
		t.Fatalf("DecisionList: %v", err)
	}
	return ds
}

func mustMessages(t testing.TB, s engineStore, p *nudge.MessageListParams) []*nudge.Message {
	t.Helper()
	ms, err := s.MessageList(ctx, p)
	if err != nil {
		t.Fatalf("MessageList: %v", err)
	}
	return ms
}

func mustEnrollments(t testing.TB, s engineStore, p *nudge.EnrollmentListParams) []*nudge.Enrollment {
	t.Helper()
	es, err := s.EnrollmentList(ctx, p)
	if err != nil {
		t.Fatalf("EnrollmentList: %v", err)
	}
	return es
}

func enrollmentIDs(es []*nudge.Enrollment) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func decisionReasons(ds []*nudge.Decision) []string {
	rs := []string{}
	for _, d := range ds {
		rs = append(rs, d.Reason)
	}
	return rs
}

func msgIDs(ms []*nudge.Message) []string {
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// engineFixture is a store with journey "j" published (version 1) and
// contacts c1 and c2, their inbox items consumed.
func engineFixture(t *testing.T, open func(t *testing.T) nudge.Store) engineStore {
	t.Helper()
	s := openEngine(t, open)
	mustPublish(t, s, now, "j", "id: j\n")
	mustPut(t, s, now, &nudge.Contact{ID: "c1", Email: "ann@example.com"}, &nudge.Contact{ID: "c2"})
	mustCommit(t, s, now, &nudge.EngineCommit{InboxDone: inboxSeqs(mustClaimInbox(t, s, now, 100))})
	return s
}

func testEngineCommit(t *testing.T, open func(t *testing.T) nudge.Store) {
	later := now.Add(time.Hour)

	t.Run("a transition and everything it changes", func(t *testing.T) {
		s := engineFixture(t, open)
		mustIngest(t, s, now, track("m1", "c1", "webinar.registered", 0, map[string]any{"webinar_id": "w1", "seats": float64(2)}))
		items := mustClaimInbox(t, s, now, 10)

		e := waiting("e1", "j", "c1", later.Add(time.Hour))
		e.Key = "w1"
		e.WaitEvent = "webinar.joined"
		e.HeldOut = true
		e.Event = items[0].Event
		e.Steps = map[string]nudge.StepRecord{"confirm": {At: later, MessageID: "msg1"}}
		d1 := decision(e, nudge.OutcomeEntered, "event_trigger")
		d2 := decision(e, nudge.OutcomeSent, "sent")
		d2.Channel = nudge.ChannelEmail
		d2.Details = map[string]any{"template": "confirm", "attempt": float64(1)}
		d2.PolicyVersion = 3
		m := message("msg1", e, "confirm")
		m.Purpose = "onboarding"
		m.Details = map[string]any{"subject": "You are in"}
		c := &nudge.EngineCommit{
			Enrollments:    []*nudge.Enrollment{e},
			Decisions:      []*nudge.Decision{d1, d2},
			Messages:       []*nudge.Message{m},
			ContactPatches: []*nudge.ContactPatch{{ID: "c1", JourneyStage: ptr("registered")}},
			InboxDone:      inboxSeqs(items),
		}
		mustCommit(t, s, later, c)

		if e.Rev != 1 {
			t.Errorf("inserted enrollment Rev = %d, want 1 (stored revisions start at 1)", e.Rev)
		}
		if !e.UpdatedAt.Equal(later) {
			t.Errorf("inserted enrollment UpdatedAt = %v, want the commit's now %v", e.UpdatedAt, later)
		}
		got := mustEnrollment(t, s, "e1")
		if d := diff(e, got); d != "" {
			t.Errorf("EnrollmentGet (-committed +got):\n%s", d)
		}
		wantUTC(t, "enrollment", got.WakeAt, got.EnteredAt, got.UpdatedAt, got.Event.Timestamp, got.Steps["confirm"].At)

		if d1.ID <= 0 || d2.ID <= d1.ID {
			t.Errorf("decision IDs %d, %d; want set, increasing in commit order", d1.ID, d2.ID)
		}
		if d := diff([]*nudge.Decision{d1, d2}, mustDecisions(t, s, &nudge.DecisionListParams{ContactID: "c1"})); d != "" {
			t.Errorf("DecisionList (-want +got):\n%s", d)
		}

		wantM := *m
		wantM.CreatedAt, wantM.UpdatedAt = later, later
		gotM := mustMessages(t, s, &nudge.MessageListParams{ContactID: "c1"})
		if d := diff([]*nudge.Message{&wantM}, gotM); d != "" {
			t.Errorf("MessageList (-want +got):\n%s", d)
		}

		if got := mustGet(t, s, "c1"); got.JourneyStage != "registered" || !got.UpdatedAt.Equal(later) {
			t.Errorf("contact journey stage %q updated %v; want registered, %v", got.JourneyStage, got.UpdatedAt, later)
		}
		// The event's item is consumed; the contact patch left one (an
		// update_contact step may start an attribute trigger).
		if d := diff([]string{"c1/"}, inboxKeys(mustClaimInbox(t, s, later.Add(10*lease), 10))); d != "" {
			t.Errorf("inbox after the commit (-want +got):\n%s", d)
		}
	})

	t.Run("updates bump Rev", func(t *testing.T) {
		s := engineFixture(t, open)
		e := waiting("e1", "j", "c1", later)
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		e.StepID, e.WakeAt, e.WaitEvent = "reminder", later.Add(time.Hour), "email.clicked"
		mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		if e.Rev != 2 {
			t.Errorf("Rev after one update = %d, want 2", e.Rev)
		}
		if d := diff(e, mustEnrollment(t, s, "e1")); d != "" {
			t.Errorf("after update (-committed +got):\n%s", d)
		}
		e.State, e.StepID, e.WakeAt, e.WaitEvent, e.EndedAt = nudge.EnrollmentCompleted, "", time.Time{}, "", later
		mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		if e.Rev != 3 {
			t.Errorf("Rev after two updates = %d, want 3", e.Rev)
		}
		got := mustEnrollment(t, s, "e1")
		if d := diff(e, got); d != "" {
			t.Errorf("after ending (-committed +got):\n%s", d)
		}
		if !got.WakeAt.IsZero() {
			t.Errorf("ended enrollment WakeAt = %v, want zero", got.WakeAt)
		}
	})

	t.Run("a stale Rev changes nothing", func(t *testing.T) {
		s := engineFixture(t, open)
		e := waiting("e1", "j", "c1", later)
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		mustIngest(t, s, now, track("m1", "c1", "email.clicked", 0, nil))
		items := mustClaimInbox(t, s, now, 10)

		// Another process advanced e1 since this one read it.
		other := clone(e)
		other.StepID = "elsewhere"
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{other}})
		before := mustEnrollment(t, s, "e1")

		stale := clone(e) // Rev 1
		stale.StepID = "clicked"
		e2 := waiting("e2", "j", "c2", later)
		d := decision(stale, nudge.OutcomeBranched, "event_arrived")
		m := message("msg1", stale, "sms")
		err := s.EngineCommit(ctx, &nudge.EngineCommit{
			Enrollments:    []*nudge.Enrollment{e2, stale},
			Decisions:      []*nudge.Decision{d},
			Messages:       []*nudge.Message{m},
			CancelMessages: []string{"e1"},
			ContactPatches: []*nudge.ContactPatch{{ID: "c1", JourneyStage: ptr("clicked")}},
			InboxDone:      inboxSeqs(items),
			Released:       []string{"e1"},
		}, later)
		wantCode(t, "EngineCommit with a stale Rev", err, nudge.ECONFLICT)
		if !strings.Contains(nudge.ErrorMessage(err), "e1") {
			t.Errorf("conflict message %q does not name the enrollment e1", nudge.ErrorMessage(err))
		}

		if d := diff(before, mustEnrollment(t, s, "e1")); d != "" {
			t.Errorf("e1 changed (-before +after):\n%s", d)
		}
		_, err = s.EnrollmentGet(ctx, "e2")
		wantCode(t, "EnrollmentGet(e2) of the failed commit", err, nudge.ENOTFOUND)
		if ds := mustDecisions(t, s, &nudge.DecisionListParams{}); len(ds) != 0 {
			t.Errorf("decisions of the failed commit were kept: %v", decisionReasons(ds))
		}
		if ms := mustMessages(t, s, &nudge.MessageListParams{}); len(ms) != 0 {
			t.Errorf("messages of the failed commit were kept: %v", msgIDs(ms))
		}
		if got := mustGet(t, s, "c1"); got.JourneyStage != "" {
			t.Errorf("contact patch of the failed commit applied: journey stage %q", got.JourneyStage)
		}
		if d := diff([]string{"c1/m1"}, inboxKeys(mustClaimInbox(t, s, later.Add(10*lease), 10))); d != "" {
			t.Errorf("inbox after the failed commit (-want +got):\n%s", d)
		}
		if stale.Rev != 1 || e2.Rev != 0 || d.ID != 0 {
			t.Errorf("failed commit changed its structs: Revs %d, %d, decision ID %d; want 1, 0, 0", stale.Rev, e2.Rev, d.ID)
		}
	})

	t.Run("an update of an enrollment never stored conflicts", func(t *testing.T) {
		s := engineFixture(t, open)
		e := waiting("ghost", "j", "c1", later)
		e.Rev = 4
		err := s.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}}, now)
		wantCode(t, "EngineCommit of an unknown enrollment with Rev 4", err, nudge.ECONFLICT)
	})

	t.Run("the conflict named is the stale update, not its neighbours", func(t *testing.T) {
		s := engineFixture(t, open)
		mustPut(t, s, now, &nudge.Contact{ID: "c3"})
		es := []*nudge.Enrollment{waiting("e1", "j", "c1", later), waiting("e2", "j", "c2", later), waiting("e3", "j", "c3", later)}
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: es})
		moved := clone(es[1])
		moved.StepID = "elsewhere"
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{moved}})
		for _, tt := range []struct {
			name string
			es   []*nudge.Enrollment
			want string
		}{
			{"a stale revision between current ones", []*nudge.Enrollment{clone(es[0]), clone(es[1]), clone(es[2])}, "e2"},
			{"one enrollment given twice", []*nudge.Enrollment{clone(es[0]), clone(es[2]), clone(es[2])}, "e3"},
		} {
			for _, e := range tt.es {
				e.StepID = "next"
			}
			err := s.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: tt.es}, later)
			wantCode(t, tt.name, err, nudge.ECONFLICT)
			if msg := nudge.ErrorMessage(err); !strings.Contains(msg, tt.want) || strings.Contains(msg, "e1") {
				t.Errorf("%s: conflict message %q; want it to name %s, and not e1, which was current", tt.name, msg, tt.want)
			}
			if got := mustEnrollment(t, s, "e1"); got.StepID != "wait" || got.Rev != 1 {
				t.Errorf("%s: e1 at step %q, revision %d; want it unchanged (wait, 1)", tt.name, got.StepID, got.Rev)
			}
		}
	})

	t.Run("one live enrollment per journey, contact and key", func(t *testing.T) {
		s := engineFixture(t, open)
		mustPublish(t, s, now, "k", "id: k\n")
		e1 := waiting("e1", "j", "c1", later)
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}})
		steps := []struct {
			name string
			e    *nudge.Enrollment
			key  string
			code string
		}{
			{"same journey, contact and key", waiting("e2", "j", "c1", later), "", nudge.ECONFLICT},
			{"the same id again", waiting("e1", "j", "c2", later), "", nudge.ECONFLICT},
			{"another key", waiting("e3", "j", "c1", later), "w1", ""},
			{"yet another key", waiting("e4", "j", "c1", later), "w2", ""},
			{"a key taken", waiting("e5", "j", "c1", later), "w1", nudge.ECONFLICT},
			{"another contact", waiting("e6", "j", "c2", later), "", ""},
			{"another journey", waiting("e7", "k", "c1", later), "", ""},
		}
		for _, st := range steps {
			st.e.Key = st.key
			err := s.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{st.e}}, now)
			wantCode(t, "EngineCommit of "+st.name, err, st.code)
		}
		// Once e1 ends, the contact may enter again.
		e1.State, e1.WakeAt, e1.EndedAt = nudge.EnrollmentConverted, time.Time{}, later
		mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}})
		mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{waiting("e8", "j", "c1", later)}})
		got := mustEnrollments(t, s, &nudge.EnrollmentListParams{ContactID: "c1", JourneyID: "j"})
		if d := diff([]string{"e1", "e3", "e4", "e8"}, enrollmentIDs(got)); d != "" {
			t.Errorf("enrollments of c1 in j (-want +got):\n%s", d)
		}
	})

	t.Run("a message whose idempotency key exists is skipped", func(t *testing.T) {
		s := engineFixture(t, open)
		e := waiting("e1", "j", "c1", later)
		m1 := message("msg1", e, "confirm")
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}, Messages: []*nudge.Message{m1}})
		m2 := message("msg2", e, "confirm") // a retried transition
		m2.Template = "other"
		m3 := message("msg3", e, "reminder")
		m4 := message("msg4", e, "reminder") // twice in one commit
		mustCommit(t, s, later, &nudge.EngineCommit{Messages: []*nudge.Message{m2, m3, m4}})
		got := mustMessages(t, s, &nudge.MessageListParams{EnrollmentID: "e1"})
		if d := diff([]string{"msg1", "msg3"}, msgIDs(got)); d != "" {
			t.Fatalf("messages (-want +got):\n%s", d)
		}
		if got[0].Template != "confirm" || !got[0].CreatedAt.Equal(now) {
			t.Errorf("kept message template %q created %v; want the first, confirm at %v", got[0].Template, got[0].CreatedAt, now)
		}
		// Each message stored has the one first entry of its history: a
		// skipped one adds none to the message it would have repeated.
		for _, w := range []struct {
			id string
			at time.Time
		}{{"msg1", now}, {"msg3", later}} {
			h := mustHistory(t, s, w.id)
			if len(h) != 1 || h[0].Status != nudge.MessageQueued || !h[0].At.Equal(w.at) {
				t.Errorf("history of %s: %+v; want one entry, queued at %v", w.id, h, w.at)
			}
		}
	})

	t.Run("cancelling touches only queued messages of the enrollments named", func(t *testing.T) {
		s := engineFixture(t, open)
		e1, e2 := waiting("e1", "j", "c1", later), waiting("e2", "j", "c2", later)
		queued := message("mA", e1, "email")
		sent := message("mB", e1, "sms")
		sent.Status = nudge.MessageSent
		deferred := message("mC", e1, "sms2")
		deferred.AvailableAt = later.Add(time.Hour)
		others := message("mD", e2, "email")
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2},
			Messages: []*nudge.Message{queued, sent, deferred, others}})

		e1.State, e1.WakeAt, e1.EndedAt = nudge.EnrollmentConverted, time.Time{}, later
		mustCommit(t, s, later, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1}, CancelMessages: []string{"e1"}})

		want := map[string]struct {
			status  string
			updated time.Time
		}{
			"mA": {nudge.MessageCancelled, later},
			"mB": {nudge.MessageSent, now},
			"mC": {nudge.MessageCancelled, later},
			"mD": {nudge.MessageQueued, now},
		}
		for _, m := range mustMessages(t, s, &nudge.MessageListParams{}) {
			w := want[m.ID]
			if m.Status != w.status || !m.UpdatedAt.Equal(w.updated) {
				t.Errorf("message %s status %q updated %v; want %q, %v", m.ID, m.Status, m.UpdatedAt, w.status, w.updated)
			}
		}
	})

	t.Run("committing and releasing clear claims", func(t *testing.T) {
		s := engineFixture(t, open)
		e := waiting("e1", "j", "c1", now.Add(-time.Minute))
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		claim := func(what string, want ...string) []*nudge.Enrollment {
			t.Helper()
			got := mustClaimDue(t, s, now, 10)
			if d := diff(append([]string{}, want...), enrollmentIDs(got)); d != "" {
				t.Fatalf("%s: EnrollmentClaimDue (-want +got):\n%s", what, d)
			}
			return got
		}
		claim("first claim", "e1")
		claim("while claimed")
		mustCommit(t, s, now, &nudge.EngineCommit{Released: []string{"e1"}})
		claimed := claim("after release", "e1")
		e = claimed[0]
		e.StepID = "again" // still due
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		claim("after a commit", "e1")
	})

	t.Run("invalid", func(t *testing.T) {
		s := engineFixture(t, open)
		for name, c := range map[string]*nudge.EngineCommit{
			"an enrollment without id": {Enrollments: []*nudge.Enrollment{waiting("", "j", "c1", now)}},
			"an enrollment in an unknown state": {Enrollments: []*nudge.Enrollment{func() *nudge.Enrollment {
				e := waiting("e1", "j", "c1", now)
				e.State = "running"
				return e
			}()}},
			"a message without idempotency key": {Messages: []*nudge.Message{func() *nudge.Message {
				m := message("msg1", waiting("e1", "j", "c1", now), "s")
				m.IdempotencyKey = ""
				return m
			}()}},
			"a contact patch without id": {ContactPatches: []*nudge.ContactPatch{{Email: ptr("x@example.com")}}},
		} {
			wantCode(t, "EngineCommit with "+name, s.EngineCommit(ctx, c, now), nudge.EINVALID)
		}
		wantCode(t, "EngineCommit(nil)", s.EngineCommit(ctx, nil, now), nudge.EINVALID)
	})
}

func testEnrollmentClaimDue(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	mustPublish(t, s, now, "paused", "id: paused\n")
	mustSetStatus(t, s, now, "paused", nudge.JourneyPaused)
	mustPublish(t, s, now, "archived", "id: archived\n")
	mustSetStatus(t, s, now, "archived", nudge.JourneyArchived)
	ended := waiting("ended", "j", "c2", now.Add(-time.Hour))
	ended.Key = "x"
	ended.State, ended.EndedAt = nudge.EnrollmentCompleted, now
	noTimer := waiting("no-timer", "j", "c2", time.Time{})
	noTimer.Key, noTimer.WaitEvent = "y", "email.clicked"
	es := []*nudge.Enrollment{
		waiting("b", "j", "c1", now.Add(-time.Hour)),
		waiting("a", "j", "c2", now.Add(-time.Hour)), // same wake time as b: by id
		waiting("c", "j", "c1", now.Add(-2*time.Hour)),
		waiting("d", "j", "c1", now), // due at now exactly
		waiting("future", "j", "c1", now.Add(time.Minute)),
		waiting("p", "paused", "c1", now.Add(-3*time.Hour)),
		waiting("r", "archived", "c1", now.Add(-3*time.Hour)),
		ended,
		noTimer,
	}
	for i, e := range es[:5] {
		e.Key = fmt.Sprint(i) // several live enrollments of c1 in j
	}
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: es})
	stored := map[string]*nudge.Enrollment{}
	for _, e := range es {
		stored[e.ID] = e
	}

	half := now.Add(lease / 2)
	steps := []struct {
		name  string
		at    time.Time
		limit int
		want  []string
	}{
		{"the most overdue first, up to the limit", now, 2, []string{"c", "a"}},
		{"then the next; not those of paused journeys, not future ones", now, 10, []string{"b", "d"}},
		{"claimed ones are not claimed again", half, 10, []string{}},
		{"a claim lasts its whole lease", now.Add(lease), 10, []string{"future"}},
		{"expired claims are claimed again", now.Add(lease + time.Second), 10, []string{"c", "a", "b", "d"}},
	}
	for _, st := range steps {
		got := mustClaimDue(t, s, st.at, st.limit)
		if d := diff(st.want, enrollmentIDs(got)); d != "" {
			t.Fatalf("%s: EnrollmentClaimDue (-want +got):\n%s", st.name, d)
		}
		for _, e := range got {
			if d := diff(stored[e.ID], e); d != "" {
				t.Errorf("%s: claimed %s (-stored +claimed):\n%s", st.name, e.ID, d)
			}
		}
	}

	t.Run("resuming a journey makes its waits due", func(t *testing.T) {
		mustSetStatus(t, s, now, "paused", nudge.JourneyActive)
		got := mustClaimDue(t, s, now.Add(lease+time.Second), 10)
		if d := diff([]string{"p"}, enrollmentIDs(got)); d != "" {
			t.Errorf("EnrollmentClaimDue after resume (-want +got):\n%s", d)
		}
	})

	t.Run("invalid lease", func(t *testing.T) {
		_, err := s.EnrollmentClaimDue(ctx, now, 10, -time.Second)
		wantCode(t, "EnrollmentClaimDue with a negative lease", err, nudge.EINVALID)
	})
}

func testEnrollmentList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	mustPublish(t, s, now, "k", "id: k\n")
	var es []*nudge.Enrollment
	for i := range 12 {
		e := waiting(id("e", i), []string{"j", "k"}[i%2], []string{"c1", "c2"}[i/6], now.Add(time.Hour))
		e.Key = fmt.Sprint(i)
		if i%3 == 0 {
			e.State, e.WakeAt, e.EndedAt = nudge.EnrollmentExited, time.Time{}, now
		}
		es = append(es, e)
	}
	// Inserted out of id order: lists are by id all the same.
	rev := slices.Clone(es)
	slices.Reverse(rev)
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: rev})

	ids := func(keep func(i int) bool) []string {
		out := []string{}
		for i := range es {
			if keep(i) {
				out = append(out, id("e", i))
			}
		}
		return out
	}
	tests := []struct {
		name string
		p    *nudge.EnrollmentListParams
		want []string
	}{
		{"all", nil, ids(func(int) bool { return true })},
		{"by journey", &nudge.EnrollmentListParams{JourneyID: "k"}, ids(func(i int) bool { return i%2 == 1 })},
		{"by contact", &nudge.EnrollmentListParams{ContactID: "c2"}, ids(func(i int) bool { return i >= 6 })},
		{"live only", &nudge.EnrollmentListParams{LiveOnly: true}, ids(func(i int) bool { return i%3 != 0 })},
		{"all filters", &nudge.EnrollmentListParams{JourneyID: "j", ContactID: "c1", LiveOnly: true},
			ids(func(i int) bool { return i%2 == 0 && i < 6 && i%3 != 0 })},
		{"a page", &nudge.EnrollmentListParams{AfterID: "e0003", Limit: 4}, []string{"e0004", "e0005", "e0006", "e0007"}},
		{"the last page", &nudge.EnrollmentListParams{AfterID: "e0009", Limit: 4}, []string{"e0010", "e0011"}},
		{"unknown journey", &nudge.EnrollmentListParams{JourneyID: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustEnrollments(t, s, tt.p)
			if d := diff(tt.want, enrollmentIDs(got)); d != "" {
				t.Errorf("EnrollmentList (-want +got):\n%s", d)
			}
		})
	}
	t.Run("the default limit is 100", func(t *testing.T) {
		var more []*nudge.Enrollment
		for i := range 120 {
			e := waiting(id("x", i), "j", "c2", now.Add(time.Hour))
			e.Key = id("x", i)
			more = append(more, e)
		}
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: more})
		if got := mustEnrollments(t, s, &nudge.EnrollmentListParams{}); len(got) != 100 {
			t.Errorf("EnrollmentList without limit: %d enrollments, want 100", len(got))
		}
		if got := mustEnrollments(t, s, &nudge.EnrollmentListParams{Limit: 1 << 30}); len(got) != 132 {
			t.Errorf("EnrollmentList with a huge limit: %d enrollments, want all 132", len(got))
		}
	})
	t.Run("enrollments come back whole", func(t *testing.T) {
		got := mustEnrollments(t, s, &nudge.EnrollmentListParams{ContactID: "c1", Limit: 2})
		if d := diff(es[:2], got); d != "" {
			t.Errorf("EnrollmentList (-committed +got):\n%s", d)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		_, err := s.EnrollmentGet(ctx, "nope")
		wantCode(t, "EnrollmentGet(nope)", err, nudge.ENOTFOUND)
	})
}

func testDecisionList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	e1, e2 := waiting("e1", "j", "c1", now), waiting("e2", "j", "c2", now)
	var ds []*nudge.Decision
	for i := range 110 {
		e := []*nudge.Enrollment{e1, e2}[i%2]
		d := decision(e, nudge.OutcomeWaiting, fmt.Sprintf("r%03d", i))
		if i%5 == 0 {
			d.JourneyID, d.Version, d.EnrollmentID = "k", 2, "" // a not_entered, say
			d.Outcome = nudge.OutcomeNotEntered
		}
		ds = append(ds, d)
	}
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2}, Decisions: ds})
	reasons := func(keep func(i int) bool) []string {
		out := []string{}
		for i := range ds {
			if keep(i) {
				out = append(out, ds[i].Reason)
			}
		}
		return out
	}
	tests := []struct {
		name string
		p    *nudge.DecisionListParams
		want []string
	}{
		{"default limit 100", nil, reasons(func(i int) bool { return i < 100 })},
		{"after", &nudge.DecisionListParams{AfterID: ds[99].ID}, reasons(func(i int) bool { return i >= 100 })},
		{"a page", &nudge.DecisionListParams{AfterID: ds[9].ID, Limit: 3}, []string{"r010", "r011", "r012"}},
		{"by contact", &nudge.DecisionListParams{ContactID: "c2", Limit: 1000}, reasons(func(i int) bool { return i%2 == 1 })},
		{"by journey", &nudge.DecisionListParams{JourneyID: "k", Limit: 1000}, reasons(func(i int) bool { return i%5 == 0 })},
		{"by enrollment", &nudge.DecisionListParams{EnrollmentID: "e1", Limit: 1000},
			reasons(func(i int) bool { return i%2 == 0 && i%5 != 0 })},
		{"by contact and journey", &nudge.DecisionListParams{ContactID: "c1", JourneyID: "k", Limit: 1000},
			reasons(func(i int) bool { return i%10 == 0 })},
		{"unknown contact", &nudge.DecisionListParams{ContactID: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustDecisions(t, s, tt.p)
			if d := diff(tt.want, decisionReasons(got)); d != "" {
				t.Errorf("DecisionList (-want +got):\n%s", d)
			}
		})
	}
	t.Run("decisions come back whole", func(t *testing.T) {
		got := mustDecisions(t, s, &nudge.DecisionListParams{Limit: 1000})
		if d := diff(ds, got); d != "" {
			t.Errorf("DecisionList (-committed +got):\n%s", d)
		}
		for _, d := range got[:1] {
			wantUTC(t, "decision At", d.At)
		}
	})
}

func testMessageList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	e1, e2 := waiting("e1", "j", "c1", now), waiting("e2", "j", "c2", now)
	var ms []*nudge.Message
	for i := range 9 {
		e := []*nudge.Enrollment{e1, e2}[i%2]
		m := message(id("msg", i), e, id("s", i))
		if i%3 == 0 {
			m.Status = nudge.MessageSent
		}
		ms = append(ms, m)
	}
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e1, e2}, Messages: rev})
	ids := func(keep func(i int) bool) []string {
		out := []string{}
		for i := range ms {
			if keep(i) {
				out = append(out, ms[i].ID)
			}
		}
		return out
	}
	tests := []struct {
		name string
		p    *nudge.MessageListParams
		want []string
	}{
		{"all, by id", nil, ids(func(int) bool { return true })},
		{"by contact", &nudge.MessageListParams{ContactID: "c1"}, ids(func(i int) bool { return i%2 == 0 })},
		{"by enrollment", &nudge.MessageListParams{EnrollmentID: "e2"}, ids(func(i int) bool { return i%2 == 1 })},
		{"by status", &nudge.MessageListParams{Status: nudge.MessageQueued}, ids(func(i int) bool { return i%3 != 0 })},
		{"a page", &nudge.MessageListParams{AfterID: "msg0002", Limit: 2}, []string{"msg0003", "msg0004"}},
		{"a filtered page", &nudge.MessageListParams{ContactID: "c2", Status: nudge.MessageQueued, AfterID: "msg0001"},
			[]string{"msg0005", "msg0007"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustMessages(t, s, tt.p)
			if d := diff(tt.want, msgIDs(got)); d != "" {
				t.Errorf("MessageList (-want +got):\n%s", d)
			}
		})
	}
	t.Run("messages come back whole", func(t *testing.T) {
		got := mustMessages(t, s, &nudge.MessageListParams{Limit: 1})
		want := *ms[0]
		want.CreatedAt, want.UpdatedAt = now, now
		if d := diff([]*nudge.Message{&want}, got); d != "" {
			t.Errorf("MessageList (-want +got):\n%s", d)
		}
		wantUTC(t, "message", got[0].AvailableAt, got[0].CreatedAt, got[0].UpdatedAt)
	})
}

func testEngineErase(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	for _, c := range []string{"c1", "c2"} {
		e := waiting("e-"+c, "j", c, now.Add(time.Hour))
		mustCommit(t, s, now, &nudge.EngineCommit{
			Enrollments: []*nudge.Enrollment{e},
			Decisions:   []*nudge.Decision{decision(e, nudge.OutcomeEntered, "event_trigger")},
			Messages:    []*nudge.Message{message("msg-"+c, e, "welcome")},
		})
		mustIngest(t, s, now, track("m-"+c, c, "page.viewed", 0, nil))
	}
	if err := s.ContactErase(ctx, "c1", now); err != nil {
		t.Fatalf("ContactErase(c1): %v", err)
	}
	_, err := s.EnrollmentGet(ctx, "e-c1")
	wantCode(t, "EnrollmentGet of the erased contact's enrollment", err, nudge.ENOTFOUND)
	if got := mustEnrollments(t, s, &nudge.EnrollmentListParams{}); !slices.Equal(enrollmentIDs(got), []string{"e-c2"}) {
		t.Errorf("enrollments after erasure: %v, want [e-c2]", enrollmentIDs(got))
	}
	if got := mustDecisions(t, s, &nudge.DecisionListParams{}); len(got) != 1 || got[0].ContactID != "c2" {
		t.Errorf("decisions after erasure: %d, want only c2's", len(got))
	}
	if got := mustMessages(t, s, &nudge.MessageListParams{}); !slices.Equal(msgIDs(got), []string{"msg-c2"}) {
		t.Errorf("messages after erasure: %v, want [msg-c2]", msgIDs(got))
	}
	if d := diff([]string{"c2/m-c2"}, inboxKeys(mustClaimInbox(t, s, now, 10))); d != "" {
		t.Errorf("inbox after erasure (-want +got):\n%s", d)
	}
	if got := mustClaimDue(t, s, now.Add(2*time.Hour), 10); !slices.Equal(enrollmentIDs(got), []string{"e-c2"}) {
		t.Errorf("due after erasure: %v, want [e-c2]", enrollmentIDs(got))
	}
}

// testClaimConcurrent claims from two goroutines at once: each enrollment
// and each inbox item goes to exactly one of them.
func testClaimConcurrent(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	const n = 300
	var es []*nudge.Enrollment
	var items []nudge.IngestItem
	for i := range n {
		e := waiting(id("e", i), "j", "c1", now.Add(-time.Duration(i)*time.Second))
		e.Key = e.ID
		es = append(es, e)
		items = append(items, track(id("m", i), "c1", "page.viewed", 0, nil))
	}
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: es})
	mustIngest(t, s, now, items...)

	run := func(claim func() ([]string, error)) [2][]string {
		var (
			wg   sync.WaitGroup
			got  [2][]string
			errs [2]error
		)
		for g := range 2 {
			wg.Go(func() {
				for {
					ids, err := claim()
					if err != nil {
						errs[g] = err
						return
					}
					if len(ids) == 0 {
						return
					}
					got[g] = append(got[g], ids...)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
		}
		return got
	}
	check := func(what string, got [2][]string) {
		t.Helper()
		seen := map[string]int{}
		for g := range 2 {
			for _, id := range got[g] {
				seen[id]++
			}
		}
		if len(seen) != n {
			t.Errorf("%s: %d distinct claimed, want %d", what, len(seen), n)
		}
		for id, k := range seen {
			if k > 1 {
				t.Errorf("%s: %s claimed %d times", what, id, k)
			}
		}
	}

	check("enrollments", run(func() ([]string, error) {
		es, err := s.EnrollmentClaimDue(ctx, now, 7, lease)
		return enrollmentIDs(es), err
	}))
	check("inbox items", run(func() ([]string, error) {
		items, err := s.InboxClaim(ctx, now, 7, lease)
		return inboxKeys(items), err
	}))
}
