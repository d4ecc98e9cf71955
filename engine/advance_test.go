package engine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/policy"
)

func mustJourney(t testing.TB, src string) *journey.Journey {
	t.Helper()
	j, err := journey.Parse("test.yaml", []byte(src), journey.Options{})
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return j
}

func counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("id%04d", n) }
}

func reasons(ds []*nudge.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Reason)
	}
	return out
}

const stepsHead = "id: j\ntrigger: {event: go}\nsteps:\n"

func TestAdvance(t *testing.T) {
	now := nudgetest.Epoch // Monday 09:00 UTC
	jane := &nudge.Contact{ID: "c1", Email: "jane@example.com", Phone: "+15555550100", Attributes: map[string]any{"plan": "pro"}}
	noPhone := &nudge.Contact{ID: "c2", Email: "bob@example.com", Attributes: map[string]any{}}
	paris := &nudge.Contact{ID: "c3", Email: "x@example.com", Timezone: "Europe/Paris", Attributes: map[string]any{}}
	startsAt := map[string]any{"starts_at": "2026-03-05T15:00:00Z"}

	tests := []struct {
		name      string
		steps     string
		contact   *nudge.Contact
		event     *nudge.Event // the enrollment's trigger event
		heldOut   bool
		wantState string
		wantStep  string
		wantWake  time.Time
		wantWait  string // WaitEvent
		reasons   []string
		messages  []string // channels
		patches   int
		policy    engine.Policy // nil: engine.DefaultPolicy
		check     func(t *testing.T, tr *engine.Transition)
	}{
		{
			name:      "email then end",
			steps:     "  - id: hello\n    email: {template: hello}\n",
			contact:   jane,
			wantState: nudge.EnrollmentCompleted, wantStep: "hello",
			reasons:  []string{engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelEmail},
			check: func(t *testing.T, tr *engine.Transition) {
				m := tr.Messages[0]
				if m.Template != "hello" || m.Status != nudge.MessageQueued || m.IdempotencyKey != "e1:hello:v1" || !m.AvailableAt.Equal(now) {
					t.Errorf("message = %+v", m)
				}
				if got := tr.Enrollment.Steps["hello"].MessageID; got != m.ID {
					t.Errorf("steps[hello].message_id = %q, want %q", got, m.ID)
				}
				if got, want := tr.Decisions[0].Message, "Sent email 'hello' (step hello)."; got != want {
					t.Errorf("sentence = %q, want %q", got, want)
				}
			},
		},
		{
			name:      "sms with purpose",
			steps:     "  - id: text\n    sms: {template: t, purpose: reminder}\n",
			contact:   jane,
			policy:    func(*engine.Send) *nudge.Decision { return nil },
			wantState: nudge.EnrollmentCompleted, wantStep: "text",
			reasons:  []string{engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelSMS},
			check: func(t *testing.T, tr *engine.Transition) {
				if tr.Messages[0].Purpose != "reminder" {
					t.Errorf("purpose = %q", tr.Messages[0].Purpose)
				}
			},
		},
		{
			// Without a Policy, Advance asks the shipped default, which
			// knows of no SMS opt-in: no marketing text goes out.
			name:      "sms under the default policy",
			steps:     "  - id: text\n    sms: {template: t, purpose: reminder}\n",
			contact:   jane,
			wantState: nudge.EnrollmentCompleted, wantStep: "text",
			reasons: []string{policy.ReasonNoConsentSMS, engine.ReasonCompleted},
		},
		{
			name:      "sms without a phone",
			steps:     "  - id: text\n    sms: {template: t, purpose: reminder}\n  - id: after\n    email: {template: e}\n",
			contact:   noPhone,
			wantState: nudge.EnrollmentCompleted, wantStep: "after",
			reasons:  []string{engine.ReasonNoAddress, engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelEmail},
			check: func(t *testing.T, tr *engine.Transition) {
				if got, want := tr.Decisions[0].Message, "No SMS sent: the contact has no phone number (step text)."; got != want {
					t.Errorf("sentence = %q, want %q", got, want)
				}
			},
		},
		{
			name:      "held out",
			steps:     "  - id: hello\n    email: {template: hello}\n  - id: hook\n    webhook: {url: 'https://crm.example.com/x'}\n",
			contact:   jane,
			heldOut:   true,
			wantState: nudge.EnrollmentCompleted, wantStep: "hook",
			reasons: []string{engine.ReasonHeldOut, engine.ReasonHeldOut, engine.ReasonCompleted},
		},
		{
			name:      "webhook",
			steps:     "  - id: hook\n    webhook: {url: 'https://crm.example.com/x'}\n",
			contact:   jane,
			wantState: nudge.EnrollmentCompleted, wantStep: "hook",
			reasons:  []string{engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelWebhook},
			check: func(t *testing.T, tr *engine.Transition) {
				if tr.Messages[0].Details["url"] != "https://crm.example.com/x" {
					t.Errorf("details = %v", tr.Messages[0].Details)
				}
			},
		},
		{
			name:      "wait for",
			steps:     "  - id: pause\n    wait: {for: 3d}\n  - id: e\n    email: {template: e}\n",
			contact:   jane,
			wantState: nudge.EnrollmentWaiting, wantStep: "pause", wantWake: now.Add(72 * time.Hour),
			reasons: []string{engine.ReasonWaitTimer},
			check: func(t *testing.T, tr *engine.Transition) {
				if got, want := tr.Decisions[0].Message, "Waiting 3 days, until Thu 5 Mar 2026 09:00 UTC, at step pause."; got != want {
					t.Errorf("sentence = %q, want %q", got, want)
				}
			},
		},
		{
			name:      "wait until",
			steps:     "  - id: hour-before\n    wait: {until: 'timestamp(event.properties.starts_at) - duration(\"1h\")'}\n",
			contact:   jane,
			event:     &nudge.Event{Name: "go", Properties: startsAt},
			wantState: nudge.EnrollmentWaiting, wantStep: "hour-before", wantWake: time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC),
			reasons: []string{engine.ReasonWaitUntil},
		},
		{
			name:      "wait until passed",
			steps:     "  - id: w\n    wait: {until: 'timestamp(\"2026-01-01T00:00:00Z\")'}\n  - id: e\n    email: {template: e}\n",
			contact:   jane,
			wantState: nudge.EnrollmentCompleted, wantStep: "e",
			reasons:  []string{engine.ReasonWaitPassed, engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelEmail},
		},
		{
			name:      "wait until error",
			steps:     "  - id: w\n    wait: {until: 'timestamp(event.properties.starts_at)'}\n",
			contact:   jane,
			event:     &nudge.Event{Name: "go", Properties: map[string]any{}},
			wantState: nudge.EnrollmentExited, wantStep: "w",
			reasons: []string{engine.ReasonConditionError, engine.ReasonConditionError},
		},
		{
			name:      "until local, no time zone",
			steps:     "  - id: w\n    wait: {until_local: '08:00'}\n",
			contact:   jane,
			wantState: nudge.EnrollmentWaiting, wantStep: "w", wantWake: time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC),
			reasons: []string{engine.ReasonWaitLocalTime},
			check: func(t *testing.T, tr *engine.Transition) {
				if !strings.Contains(tr.Decisions[0].Message, "no time zone: UTC") {
					t.Errorf("sentence = %q, want it to say UTC is used", tr.Decisions[0].Message)
				}
			},
		},
		{
			name:      "until local in Paris on Friday",
			steps:     "  - id: w\n    wait: {until_local: '09:00', weekdays: [fri]}\n",
			contact:   paris,
			wantState: nudge.EnrollmentWaiting, wantStep: "w", wantWake: time.Date(2026, 3, 6, 8, 0, 0, 0, time.UTC),
			reasons: []string{engine.ReasonWaitLocalTime},
		},
		{
			name:      "until local later today",
			steps:     "  - id: w\n    wait: {until_local: '11:00'}\n",
			contact:   paris, // 10:00 in Paris now
			wantState: nudge.EnrollmentWaiting, wantStep: "w", wantWake: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
			reasons: []string{engine.ReasonWaitLocalTime},
		},
		{
			name:      "wait_for",
			steps:     "  - id: e\n    email: {template: e}\n  - id: clicked\n    wait_for: {event: email.clicked, timeout: 2d, on_event: done, on_timeout: done}\n  - id: done\n    exit: {}\n",
			contact:   jane,
			wantState: nudge.EnrollmentWaiting, wantStep: "clicked", wantWake: now.Add(48 * time.Hour), wantWait: "email.clicked",
			reasons:  []string{engine.ReasonQueued, engine.ReasonWaitEvent},
			messages: []string{nudge.ChannelEmail},
		},
		{
			name:      "branch case",
			steps:     "  - id: b\n    branch:\n      - if: 'contact.attributes.plan == \"free\"'\n        then: x\n      - if: 'contact.attributes.plan == \"pro\"'\n        then: y\n      - else: x\n  - id: x\n    exit: {}\n  - id: y\n    email: {template: y}\n",
			contact:   jane,
			wantState: nudge.EnrollmentCompleted, wantStep: "y",
			reasons:  []string{engine.ReasonBranchCase, engine.ReasonQueued, engine.ReasonCompleted},
			messages: []string{nudge.ChannelEmail},
			check: func(t *testing.T, tr *engine.Transition) {
				d := tr.Decisions[0]
				if d.Details["case"] != 2 || d.Details["condition"] != `contact.attributes.plan == "pro"` {
					t.Errorf("details = %v", d.Details)
				}
			},
		},
		{
			name:      "branch else with an error",
			steps:     "  - id: b\n    branch:\n      - if: 'contact.attributes.joined == true'\n        then: x\n      - else: y\n  - id: x\n    exit: {}\n  - id: y\n    exit: {}\n",
			contact:   noPhone,
			wantState: nudge.EnrollmentExited, wantStep: "y",
			reasons: []string{engine.ReasonConditionError, engine.ReasonBranchElse, engine.ReasonExitStep},
		},
		{
			name:      "split",
			steps:     "  - id: s\n    split: [{weight: 50, next: a}, {weight: 50, next: b}]\n  - id: a\n    exit: {}\n  - id: b\n    exit: {}\n",
			contact:   jane,
			wantState: nudge.EnrollmentExited,
			reasons:   []string{engine.ReasonSplit, engine.ReasonExitStep},
			check: func(t *testing.T, tr *engine.Transition) {
				want := mustJourney(t, stepsHead+"  - id: s\n    split: [{weight: 50, next: a}, {weight: 50, next: b}]\n  - id: a\n    exit: {}\n  - id: b\n    exit: {}\n").Step("s").SplitNext("c1")
				if tr.Enrollment.StepID != want {
					t.Errorf("split went to %q, want %q", tr.Enrollment.StepID, want)
				}
			},
		},
		{
			name:      "update contact",
			steps:     "  - id: u\n    update_contact: {set: {journey_stage: nurture, 'attributes.score': 3}}\n  - id: b\n    branch:\n      - if: 'contact.journey_stage == \"nurture\"'\n        then: done\n      - else: done\n  - id: done\n    exit: {}\n",
			contact:   jane,
			wantState: nudge.EnrollmentExited, wantStep: "done",
			reasons: []string{engine.ReasonContactUpdated, engine.ReasonBranchCase, engine.ReasonExitStep},
			patches: 1,
			check: func(t *testing.T, tr *engine.Transition) {
				if jane.JourneyStage != "" {
					t.Error("the input contact was changed")
				}
				if tr.Contact.JourneyStage != "nurture" {
					t.Errorf("contact after = %+v", tr.Contact)
				}
			},
		},
		{
			name:      "exit step",
			steps:     "  - id: bye\n    exit: {}\n",
			contact:   jane,
			wantState: nudge.EnrollmentExited, wantStep: "bye",
			reasons: []string{engine.ReasonExitStep},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustJourney(t, stepsHead+tt.steps)
			en := &nudge.Enrollment{ID: "e1", JourneyID: j.ID, Version: 1, ContactID: tt.contact.ID, State: nudge.EnrollmentWaiting, HeldOut: tt.heldOut, Event: tt.event, EnteredAt: now}
			tr := engine.Advance(j, en, tt.contact, engine.Input{Kind: engine.InputEnter}, now, engine.Options{NewID: counter(), Policy: tt.policy})
			got := tr.Enrollment
			if got.State != tt.wantState || (tt.wantStep != "" && got.StepID != tt.wantStep) || !got.WakeAt.Equal(tt.wantWake) || got.WaitEvent != tt.wantWait {
				t.Errorf("enrollment = state %s step %s wake %v wait %q; want %s %s %v %q", got.State, got.StepID, got.WakeAt, got.WaitEvent, tt.wantState, tt.wantStep, tt.wantWake, tt.wantWait)
			}
			if got.Live() == !got.EndedAt.IsZero() {
				t.Errorf("live %v but ended at %v", got.Live(), got.EndedAt)
			}
			if r := reasons(tr.Decisions); !slices.Equal(r, tt.reasons) {
				t.Errorf("reasons = %v, want %v", r, tt.reasons)
			}
			var chans []string
			for _, m := range tr.Messages {
				chans = append(chans, m.Channel)
			}
			if !slices.Equal(chans, tt.messages) {
				t.Errorf("messages = %v, want %v", chans, tt.messages)
			}
			if len(tr.Patches) != tt.patches {
				t.Errorf("patches = %d, want %d", len(tr.Patches), tt.patches)
			}
			for _, d := range tr.Decisions {
				if d.Message == "" || d.Outcome == "" || d.EnrollmentID != "e1" || !d.At.Equal(now) {
					t.Errorf("incomplete decision %+v", d)
				}
			}
			if en.State != nudge.EnrollmentWaiting || len(en.Steps) != 0 {
				t.Error("Advance changed its input enrollment")
			}
			if tt.check != nil {
				tt.check(t, tr)
			}
		})
	}
}

func TestAdvanceResume(t *testing.T) {
	now := nudgetest.Epoch
	j := mustJourney(t, stepsHead+"  - id: pause\n    wait: {for: 1d}\n  - id: e\n    email: {template: e}\n  - id: clicked\n    wait_for: {event: email.clicked, timeout: 2d, on_event: done, on_timeout: text}\n  - id: text\n    sms: {template: t, purpose: decision_point}\n  - id: done\n    exit: {}\n")
	jane := &nudge.Contact{ID: "c1", Email: "jane@example.com", Phone: "+15555550100"}
	tests := []struct {
		name     string
		step     string
		in       engine.Input
		reasons  []string
		wantStep string
		key      string
	}{
		{"wait ends", "pause", engine.Input{Kind: engine.InputWake}, []string{engine.ReasonQueued, engine.ReasonWaitEvent}, "clicked", "e1:e:v3"},
		{"wait_for times out", "clicked", engine.Input{Kind: engine.InputWake}, []string{engine.ReasonTimedOut, engine.ReasonQueued, engine.ReasonExitStep}, "done", "e1:text:v1"},
		{"wait_for event", "clicked", engine.Input{Kind: engine.InputEvent, Event: &nudge.Event{Name: "email.clicked"}}, []string{engine.ReasonEventArrived, engine.ReasonExitStep}, "done", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Step e ran twice before (a loop): its next run is visit 3.
			en := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", State: nudge.EnrollmentWaiting, StepID: tt.step, WakeAt: now, EnteredAt: now.Add(-72 * time.Hour), Rev: 3,
				Steps: map[string]nudge.StepRecord{"e": {At: now.Add(-72 * time.Hour), Visits: 2}}}
			tr := engine.Advance(j, en, jane, tt.in, now, engine.Options{NewID: counter(), Policy: allowAll})
			if r := reasons(tr.Decisions); !slices.Equal(r, tt.reasons) {
				t.Errorf("reasons = %v, want %v", r, tt.reasons)
			}
			if tr.Enrollment.StepID != tt.wantStep {
				t.Errorf("step = %s, want %s", tr.Enrollment.StepID, tt.wantStep)
			}
			if tt.key != "" && (len(tr.Messages) != 1 || tr.Messages[0].IdempotencyKey != tt.key) {
				t.Errorf("messages = %v, want one with key %s", tr.Messages, tt.key)
			}
		})
	}
}

// allowAll is a Policy hook that lets every send go, for tests of the
// engine's steps rather than of its guardrails.
func allowAll(*engine.Send) *nudge.Decision { return nil }

func TestPolicyHook(t *testing.T) {
	now := nudgetest.Epoch
	j := mustJourney(t, stepsHead+"  - id: text\n    sms: {template: t, purpose: reminder}\n  - id: e\n    email: {template: e}\n")
	jane := &nudge.Contact{ID: "c1", Email: "jane@example.com", Phone: "+15555550100"}
	en := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", EnteredAt: now}
	later := now.Add(10 * time.Hour)

	defer_ := func(s *engine.Send) *nudge.Decision {
		if s.Channel != nudge.ChannelSMS {
			return nil
		}
		return &nudge.Decision{Outcome: nudge.OutcomeDeferred, Reason: "quiet_hours", Message: "Deferred: quiet hours.", Details: map[string]any{"until": later}}
	}
	tr := engine.Advance(j, en, jane, engine.Input{Kind: engine.InputEnter}, now, engine.Options{NewID: counter(), Policy: defer_})
	if tr.Enrollment.StepID != "text" || !tr.Enrollment.WakeAt.Equal(later) || len(tr.Messages) != 0 || tr.Decisions[0].StepID != "text" || tr.Decisions[0].ContactID != "c1" {
		t.Fatalf("deferred: enrollment %+v, decisions %v, messages %d", tr.Enrollment, reasons(tr.Decisions), len(tr.Messages))
	}
	// At wake the send is tried again, this time allowed.
	tr = engine.Advance(j, tr.Enrollment, jane, engine.Input{Kind: engine.InputWake}, later, engine.Options{NewID: counter(), Policy: allowAll})
	if r := reasons(tr.Decisions); !slices.Equal(r, []string{engine.ReasonQueued, engine.ReasonQueued, engine.ReasonCompleted}) {
		t.Errorf("after wake: reasons = %v", r)
	}
	// The retry is the same visit of the step: the key of its first visit.
	if len(tr.Messages) != 2 || tr.Messages[0].IdempotencyKey != "e1:text:v1" {
		t.Errorf("after wake: messages %+v, want the first with key e1:text:v1", tr.Messages)
	}

	skip := func(s *engine.Send) *nudge.Decision {
		if s.Channel != nudge.ChannelSMS {
			return nil
		}
		return &nudge.Decision{Outcome: nudge.OutcomeSkipped, Reason: "no_consent", Message: "No SMS: no consent."}
	}
	tr = engine.Advance(j, en, jane, engine.Input{Kind: engine.InputEnter}, now, engine.Options{NewID: counter(), Policy: skip})
	if r := reasons(tr.Decisions); !slices.Equal(r, []string{"no_consent", engine.ReasonQueued, engine.ReasonCompleted}) || len(tr.Messages) != 1 {
		t.Errorf("skipped: reasons = %v, messages %d", r, len(tr.Messages))
	}
}

func TestStepLimit(t *testing.T) {
	// A loop through a wait whose time has always passed.
	j := mustJourney(t, stepsHead+"  - id: a\n    wait: {until: 'timestamp(\"2020-01-01T00:00:00Z\")'}\n  - id: b\n    next: a\n    update_contact: {set: {journey_stage: x}}\n")
	en := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", EnteredAt: nudgetest.Epoch}
	tr := engine.Advance(j, en, &nudge.Contact{ID: "c1"}, engine.Input{Kind: engine.InputEnter}, nudgetest.Epoch, engine.Options{NewID: counter()})
	if tr.Enrollment.State != nudge.EnrollmentExited || tr.Decisions[len(tr.Decisions)-1].Reason != engine.ReasonStepLimit {
		t.Errorf("state %s, last reason %s; want exited by step_limit", tr.Enrollment.State, tr.Decisions[len(tr.Decisions)-1].Reason)
	}
}

// An idempotency key counts the visits of its step: a loop back to the step
// (through a wait, or within one transition) gets a new key, and the same
// transition computed again gets the same one.
func TestIdempotencyKeyVisits(t *testing.T) {
	now := nudgetest.Epoch
	jane := &nudge.Contact{ID: "c1", Email: "jane@example.com", Attributes: map[string]any{}}
	keys := func(tr *engine.Transition) []string {
		var ks []string
		for _, m := range tr.Messages {
			ks = append(ks, m.IdempotencyKey)
		}
		return ks
	}
	t.Run("a loop through a wait", func(t *testing.T) {
		j := mustJourney(t, stepsHead+"  - id: hello\n    email: {template: hello}\n  - id: pause\n    next: hello\n    wait: {for: 1d}\n")
		en := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", EnteredAt: now}
		tr := engine.Advance(j, en, jane, engine.Input{Kind: engine.InputEnter}, now, engine.Options{NewID: counter(), Policy: allowAll})
		var got []string
		got = append(got, keys(tr)...)
		for i := range 3 {
			stored := tr.Enrollment
			stored.Rev = int64(i + 1)
			at := now.Add(time.Duration(i+1) * 24 * time.Hour)
			tr = engine.Advance(j, stored, jane, engine.Input{Kind: engine.InputWake}, at, engine.Options{NewID: counter(), Policy: allowAll})
			got = append(got, keys(tr)...)
			// The same transition again (a retry after a crash, another
			// engine): the same key, so the outbox keeps one message.
			again := engine.Advance(j, stored, jane, engine.Input{Kind: engine.InputWake}, at.Add(time.Minute), engine.Options{NewID: counter(), Policy: allowAll})
			if !slices.Equal(keys(again), keys(tr)) {
				t.Errorf("visit %d computed again: keys %v, want %v", i+2, keys(again), keys(tr))
			}
		}
		if want := []string{"e1:hello:v1", "e1:hello:v2", "e1:hello:v3", "e1:hello:v4"}; !slices.Equal(got, want) {
			t.Errorf("keys = %v, want %v", got, want)
		}
	})
	t.Run("a loop within one transition, through a wait that has passed", func(t *testing.T) {
		j := mustJourney(t, stepsHead+"  - id: hello\n    email: {template: hello}\n  - id: b\n    branch:\n      - if: 'has(contact.attributes.again)'\n        then: done\n      - else: u\n  - id: u\n    update_contact: {set: {'attributes.again': true}}\n  - id: w\n    next: hello\n    wait: {until: 'timestamp(\"2020-01-01T00:00:00Z\")'}\n  - id: done\n    exit: {}\n")
		en := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", EnteredAt: now}
		tr := engine.Advance(j, en, jane, engine.Input{Kind: engine.InputEnter}, now, engine.Options{NewID: counter(), Policy: allowAll})
		if got, want := keys(tr), []string{"e1:hello:v1", "e1:hello:v2"}; !slices.Equal(got, want) {
			t.Errorf("keys = %v, want %v", got, want)
		}
		if v := tr.Enrollment.Steps["hello"].Visits; v != 2 {
			t.Errorf("hello's visits = %d, want 2", v)
		}
	})
}
