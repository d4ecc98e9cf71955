package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
)

var ctx = context.Background()

// globalIDs makes ids unique across the envs of a test that share a store.
var globalIDs = func() func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("id%08d", n.Add(1)) }
}()

// stores runs f on SQLite, and on PostgreSQL when NUDGE_TEST_POSTGRES is set.
func stores(t *testing.T, f func(t *testing.T, s engine.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, nudgetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, nudgetest.Postgres(t)) })
}

// env is an engine on a store and a fake clock, with helpers to feed it.
type env struct {
	t     testing.TB
	s     engine.Store
	clock *nudgetest.Clock
	eng   *engine.Engine
	ids   func() string
	seq   int
}

func newEnv(t testing.TB, s engine.Store) *env {
	e := &env{t: t, s: s, clock: nudgetest.NewClock(nudgetest.Epoch), ids: globalIDs}
	e.eng = e.newEngine()
	return e
}

func (e *env) newEngine() *engine.Engine {
	e.t.Helper()
	eng, err := engine.New(engine.Config{Store: e.s, Clock: e.clock, NewID: e.ids})
	if err != nil {
		e.t.Fatal(err)
	}
	return eng
}

func (e *env) publish(src string) {
	e.t.Helper()
	sum := sha256.Sum256([]byte(src))
	id := strings.TrimPrefix(strings.SplitN(src, "\n", 2)[0], "id: ")
	if _, _, err := e.s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: id, Name: id, Source: []byte(src), Hash: hex.EncodeToString(sum[:])}, e.clock.Now()); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func (e *env) contact(p *nudge.ContactPatch) {
	e.t.Helper()
	if _, err := e.s.ContactMerge(ctx, []*nudge.ContactPatch{p}, e.clock.Now()); err != nil {
		e.t.Fatalf("ContactMerge: %v", err)
	}
}

// optIn records the contact's opt-in to marketing SMS.
func (e *env) optIn(contactID string) { e.consent(contactID, nudge.ConsentOptedIn) }

func (e *env) consent(contactID, status string) {
	e.t.Helper()
	rs, err := e.s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: contactID, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing, Status: status, Source: nudge.SourceAdmin}}, e.clock.Now())
	if err == nil && rs[0].Err != nil {
		err = rs[0].Err
	}
	if err != nil {
		e.t.Fatalf("ConsentRecord: %v", err)
	}
}

func (e *env) track(contactID, name string, props map[string]any) string {
	e.seq++
	id := fmt.Sprintf("%s-m%d", contactID, e.seq)
	e.trackID(id, contactID, name, props)
	return id
}

func (e *env) trackID(messageID, contactID, name string, props map[string]any) {
	e.t.Helper()
	now := e.clock.Now()
	ev := &nudge.Event{MessageID: messageID, Type: nudge.EventTrack, ContactID: contactID, Name: name, Properties: props, Timestamp: now, ReceivedAt: now}
	if _, err := e.s.EventIngest(ctx, []nudge.IngestItem{{Event: ev}}, now); err != nil {
		e.t.Fatalf("EventIngest: %v", err)
	}
}

func (e *env) run() int {
	e.t.Helper()
	n, err := e.eng.RunOnce(ctx)
	if err != nil {
		e.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func (e *env) advance(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	e.run()
}

func (e *env) decisions(contactID string) []*nudge.Decision {
	e.t.Helper()
	ds, err := e.s.DecisionList(ctx, &nudge.DecisionListParams{ContactID: contactID, Limit: 10000})
	if err != nil {
		e.t.Fatalf("DecisionList: %v", err)
	}
	return ds
}

func (e *env) reasons(contactID string) []string { return reasons(e.decisions(contactID)) }

func (e *env) messages(contactID string) []*nudge.Message {
	e.t.Helper()
	ms, err := e.s.MessageList(ctx, &nudge.MessageListParams{ContactID: contactID, Limit: 10000})
	if err != nil {
		e.t.Fatalf("MessageList: %v", err)
	}
	return ms
}

func (e *env) enrollments(contactID string) []*nudge.Enrollment {
	e.t.Helper()
	es, err := e.s.EnrollmentList(ctx, &nudge.EnrollmentListParams{ContactID: contactID, Limit: 10000})
	if err != nil {
		e.t.Fatalf("EnrollmentList: %v", err)
	}
	return es
}

func str(s string) *string { return &s }

func (e *env) wantReasons(contactID string, want ...string) {
	e.t.Helper()
	if got := e.reasons(contactID); !slices.Equal(got, want) {
		e.t.Errorf("reasons of %s = %v, want %v", contactID, got, want)
	}
}

const webinar = `id: webinar
trigger:
  event: webinar.registered
  filter: 'event.properties.webinar_id != ""'
key: 'string(event.properties.webinar_id)'
goal:
  event: webinar.attended
  match: 'event.properties.webinar_id == journey.key'
steps:
  - id: confirm
    email: {template: webinar-confirmation}
  - id: hour-before
    wait: {until: 'timestamp(event.properties.starts_at) - duration("1h")'}
  - id: text
    sms: {template: webinar-sms, purpose: reminder}
`

func TestEventJourney(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish(webinar)
		e.contact(&nudge.ContactPatch{ID: "jane", Email: str("jane@example.com"), Phone: str("+15555550100"), Timezone: str("Europe/London")})
		e.optIn("jane")
		e.contact(&nudge.ContactPatch{ID: "bob", Email: str("bob@example.com"), Phone: str("+15555550101")})
		starts := nudgetest.Epoch.Add(48 * time.Hour).Format(time.RFC3339)
		e.track("jane", "webinar.registered", map[string]any{"webinar_id": "w1", "starts_at": starts})
		e.track("bob", "webinar.registered", map[string]any{"webinar_id": "", "starts_at": starts}) // filtered out
		e.track("bob", "page.viewed", nil)
		e.run()
		e.wantReasons("jane", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitUntil)
		e.wantReasons("bob")
		en := e.enrollments("jane")[0]
		if en.Key != "w1" || en.State != nudge.EnrollmentWaiting || en.StepID != "hour-before" || !en.WakeAt.Equal(nudgetest.Epoch.Add(47*time.Hour)) {
			t.Errorf("enrollment = %+v", en)
		}
		e.advance(46 * time.Hour)
		if n := len(e.messages("jane")); n != 1 {
			t.Errorf("%d messages before the wait ends, want 1", n)
		}
		e.advance(time.Hour)
		e.wantReasons("jane", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitUntil, engine.ReasonQueued, engine.ReasonCompleted)
		ms := e.messages("jane")
		if len(ms) != 2 || ms[1].Channel != nudge.ChannelSMS || ms[1].Purpose != "reminder" || ms[1].Status != nudge.MessageQueued {
			t.Errorf("messages = %+v", ms)
		}
	})
}

const salesJourney = `id: sales
trigger: {event: pricing.viewed}
goal:
  event: demo.booked
exit:
  - 'contact.is_customer'
steps:
  - id: email
    email: {template: pricing}
  - id: clicked
    wait_for: {event: email.clicked, match: 'event.properties.message_id == journey.steps["email"].message_id', timeout: 2d, on_event: done, on_timeout: text}
  - id: text
    sms: {template: pricing-sms, purpose: decision_point}
  - id: done
    exit: {}
`

func TestWaitForAndGoal(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish(salesJourney)
		for _, id := range []string{"clicks", "silent", "books", "buys"} {
			e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com"), Phone: str("+1555555010" + fmt.Sprint(len(id))), Timezone: str("Europe/London")})
			e.optIn(id)
			e.track(id, "pricing.viewed", nil)
		}
		e.run()
		msg := e.messages("clicks")[0]
		e.clock.Advance(time.Hour)
		e.track("clicks", "email.clicked", map[string]any{"message_id": "someone else's"})
		e.run()
		e.track("clicks", "email.clicked", map[string]any{"message_id": msg.ID})
		e.track("books", "demo.booked", nil)
		e.contact(&nudge.ContactPatch{ID: "buys", IsCustomer: new(true)})
		e.run()
		e.advance(3 * 24 * time.Hour)

		e.wantReasons("clicks", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent, engine.ReasonEventArrived, engine.ReasonExitStep)
		e.wantReasons("silent", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent, engine.ReasonTimedOut, engine.ReasonQueued, engine.ReasonExitStep)
		e.wantReasons("books", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent, engine.ReasonGoalMet)
		e.wantReasons("buys", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent, engine.ReasonExitRule)

		// The goal cancels what was queued and nothing is queued again.
		for _, id := range []string{"books", "buys"} {
			ms := e.messages(id)
			if len(ms) != 1 || ms[0].Status != nudge.MessageCancelled {
				t.Errorf("%s: messages = %+v, want one, cancelled", id, ms)
			}
		}
		ds := e.decisions("books")
		if got, want := ds[len(ds)-1].Message, "Converted: demo.booked arrived; 1 queued message cancelled."; got != want {
			t.Errorf("sentence = %q, want %q", got, want)
		}
		if got := e.enrollments("books")[0].State; got != nudge.EnrollmentConverted {
			t.Errorf("state = %s, want converted", got)
		}
	})
}

func TestEntryRules(t *testing.T) {
	const steps = "steps:\n  - id: hello\n    email: {template: hello}\n  - id: pause\n    wait: {for: 1d}\n"
	tests := []struct {
		name    string
		journey string
		contact *nudge.ContactPatch
		// events, each after an hour; "+2d" advances two days instead
		events []string
		want   []string // not_entered reasons and entered, in order
		enroll int
	}{
		{"goal at entry", "goal: {condition: 'contact.is_customer'}\n", &nudge.ContactPatch{IsCustomer: new(true)}, []string{"go"}, []string{engine.ReasonGoalAlreadyMet}, 0},
		{"entry rule", "entry: 'contact.lifecycle_stage == \"lead\"'\n", &nudge.ContactPatch{LifecycleStage: str("customer")}, []string{"go"}, []string{engine.ReasonEntryRule}, 0},
		{"live enrollment", "", nil, []string{"go", "go"}, []string{engine.ReasonEnteredEvent, engine.ReasonAlreadyEnrolled}, 1},
		{"reentry never", "reentry: never\n", nil, []string{"go", "+2d", "go"}, []string{engine.ReasonEnteredEvent, engine.ReasonReentryNever}, 1},
		{"reentry always", "reentry: always\n", nil, []string{"go", "+2d", "go"}, []string{engine.ReasonEnteredEvent, engine.ReasonEnteredEvent}, 2},
		{"reentry after, too soon", "reentry: {after: 3d}\n", nil, []string{"go", "+2d", "go"}, []string{engine.ReasonEnteredEvent, engine.ReasonReentryTooSoon}, 1},
		{"reentry after", "reentry: {after: 3d}\n", nil, []string{"go", "+2d", "+2d", "+2d", "go"}, []string{engine.ReasonEnteredEvent, engine.ReasonEnteredEvent}, 2},
		{"key", "key: 'string(event.properties.k)'\n", nil, []string{"go:a", "go:b", "go:a"}, []string{engine.ReasonEnteredEvent, engine.ReasonEnteredEvent, engine.ReasonAlreadyEnrolled}, 2},
	}
	stores(t, func(t *testing.T, s engine.Store) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, s)
				e.clock.Set(nudgetest.Epoch.Add(time.Duration(i) * 30 * 24 * time.Hour))
				jid := fmt.Sprintf("entry-%d", i)
				e.publish("id: " + jid + "\ntrigger: {event: " + jid + "}\n" + tt.journey + steps)
				cid := "c" + jid
				p := &nudge.ContactPatch{Email: str("x@example.com")}
				if tt.contact != nil {
					p = tt.contact
				}
				p.ID = cid
				e.contact(p)
				for _, ev := range tt.events {
					if ev == "+2d" {
						e.advance(48 * time.Hour)
						continue
					}
					_, k, _ := strings.Cut(ev, ":")
					e.track(cid, jid, map[string]any{"k": k})
					e.advance(time.Hour)
				}
				var got []string
				for _, d := range e.decisions(cid) {
					if d.Outcome == nudge.OutcomeEntered || d.Outcome == nudge.OutcomeNotEntered {
						got = append(got, d.Reason)
						if d.Message == "" {
							t.Errorf("decision without a sentence: %+v", d)
						}
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("entry decisions = %v, want %v", got, tt.want)
				}
				if n := len(e.enrollments(cid)); n != tt.enroll {
					t.Errorf("%d enrollments, want %d", n, tt.enroll)
				}
			})
		}
	})
}

func TestHoldoutAndDuplicates(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish("id: held\ntrigger: {event: go}\nholdout: 100\nsteps:\n  - id: hello\n    email: {template: hello}\n")
		e.publish("id: dup\ntrigger: {event: dup}\nsteps:\n  - id: hello\n    email: {template: hello}\n")
		e.contact(&nudge.ContactPatch{ID: "c1", Email: str("c1@example.com")})
		e.track("c1", "go", nil)
		e.trackID("same", "c1", "dup", nil)
		e.run()
		e.trackID("same", "c1", "dup", nil)
		e.run()
		var held, sent int
		for _, d := range e.decisions("c1") {
			switch {
			case d.JourneyID == "held" && d.Reason == engine.ReasonHeldOut && d.Outcome == nudge.OutcomeHeldOut:
				held++
			case d.JourneyID == "dup" && d.Reason == engine.ReasonQueued:
				sent++
			}
		}
		ms := e.messages("c1")
		if held != 1 || sent != 1 || len(ms) != 1 || ms[0].JourneyID != "dup" {
			t.Errorf("held %d, sent %d, messages %d; want 1, 1, 1 of dup", held, sent, len(ms))
		}
		if en := e.enrollments("c1"); len(en) != 2 {
			t.Errorf("%d enrollments, want 2", len(en))
		}
	})
}

func TestAttributeAndDateTriggers(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish("id: onboard\ntrigger: {attribute: 'contact.lifecycle_stage == \"customer\"'}\nsteps:\n  - id: hello\n    email: {template: hello}\n  - id: pause\n    wait: {for: 5d}\n")
		e.publish("id: renew\ntrigger:\n  date: {field: renewal_date, offset: -7d, at: '10:00'}\nsteps:\n  - id: hello\n    email: {template: renew}\n")
		e.contact(&nudge.ContactPatch{ID: "lead", Email: str("l@example.com"), LifecycleStage: str("lead")})
		e.contact(&nudge.ContactPatch{ID: "cust", Email: str("c@example.com"), LifecycleStage: str("lead")})
		// Renewal on Mar 12: the trigger is Mar 5, 10:00 in Paris (09:00 UTC).
		e.contact(&nudge.ContactPatch{ID: "paris", Email: str("p@example.com"), Timezone: str("Europe/Paris"), Attributes: map[string]any{"renewal_date": "2026-03-12"}})
		e.run()
		e.contact(&nudge.ContactPatch{ID: "cust", LifecycleStage: str("customer")})
		e.run()
		e.contact(&nudge.ContactPatch{ID: "cust", JourneyStage: str("x")})
		e.run()
		e.wantReasons("lead")
		e.wantReasons("cust", engine.ReasonEnteredAttribute, engine.ReasonQueued, engine.ReasonWaitTimer)
		e.wantReasons("paris")
		e.advance(3*24*time.Hour - time.Minute)
		e.wantReasons("paris")
		e.advance(time.Minute)
		e.wantReasons("paris", engine.ReasonEnteredDate, engine.ReasonQueued, engine.ReasonCompleted)
		e.advance(time.Hour)
		e.wantReasons("paris", engine.ReasonEnteredDate, engine.ReasonQueued, engine.ReasonCompleted)
	})
}

func TestRestartRunsWaitsInOrder(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish("id: w\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {until: 'timestamp(event.properties.at)'}\n  - id: hello\n    email: {template: hello}\n")
		// Contacts whose waits end in the reverse order of entry.
		const n = 20
		for i := range n {
			id := fmt.Sprintf("c%02d", i)
			e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com")})
			at := nudgetest.Epoch.Add(time.Duration(n-i) * time.Hour)
			e.track(id, "go", map[string]any{"at": at.Format(time.RFC3339)})
		}
		e.run()
		// The engine stops; a week passes; a new engine on the same store.
		e.clock.Advance(7 * 24 * time.Hour)
		e.eng = e.newEngine()
		e.run()
		ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{JourneyID: "w", Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, d := range ds {
			if d.Reason == engine.ReasonQueued {
				order = append(order, d.ContactID)
			}
		}
		var want []string
		for i := n - 1; i >= 0; i-- {
			want = append(want, fmt.Sprintf("c%02d", i))
		}
		if !slices.Equal(order, want) {
			t.Errorf("sends in order %v, want %v (WakeAt order)", order, want)
		}
	})
}

func TestPauseAndVersions(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		v1 := "id: pv\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: one\n    email: {template: one}\n"
		v2 := "id: pv\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: two\n    email: {template: two}\n"
		e.publish(v1)
		e.contact(&nudge.ContactPatch{ID: "old", Email: str("o@example.com")})
		e.contact(&nudge.ContactPatch{ID: "new", Email: str("n@example.com")})
		e.contact(&nudge.ContactPatch{ID: "late", Email: str("l@example.com")})
		e.track("old", "go", nil)
		e.run()
		e.publish(v2)
		e.track("new", "go", nil)
		e.run()
		if err := s.JourneySetStatus(ctx, "pv", nudge.JourneyPaused, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.track("late", "go", nil)
		e.advance(3 * 24 * time.Hour)
		if n := len(e.messages("old")) + len(e.messages("new")) + len(e.enrollments("late")); n != 0 {
			t.Errorf("a paused journey sent %d messages or took entries", n)
		}
		if err := s.JourneySetStatus(ctx, "pv", nudge.JourneyActive, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.advance(time.Minute)
		for id, want := range map[string]string{"old": "one", "new": "two"} {
			ms := e.messages(id)
			if len(ms) != 1 || ms[0].Template != want {
				t.Errorf("%s: messages %+v, want one of template %s", id, ms, want)
			}
		}
		if ens := e.enrollments("old"); ens[0].Version != 1 {
			t.Errorf("old enrollment on version %d, want 1", ens[0].Version)
		}
	})
}
