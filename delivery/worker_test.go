package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/channel/smtp"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/template"
)

var templates = map[string]string{
	"welcome.email.liquid": "Subject: You're registered: {{ event.properties.title }}\n\n" +
		"Hi {{ contact.attributes.first_name | default: \"there\" }}, you're in for {{ event.properties.title }} ({{ journey.name }}).\n" +
		"--- html ---\n<p>Hi {{ contact.attributes.first_name | default: \"there\" }},</p><p>you're in for <b>{{ event.properties.title }}</b>.</p>\n",
	"reminder.sms.liquid": "{{ event.properties.title }} starts in 1 hour, {{ contact.attributes.first_name | default: \"there\" }}. Reply STOP to opt out.\n",
	"huge.sms.liquid":     "{% for i in (1..400) %}word {% endfor %}\n",
	"promo.sms.liquid":    "{{ event.properties.title }}: seats are going fast, {{ contact.attributes.first_name }}.\n",
	"full.sms.liquid":     "{% for i in (1..30) %}word {% endfor %}\n", // 150 characters: one segment, two with a notice
}

func loadTemplates(t testing.TB) *template.Set {
	t.Helper()
	dir := t.TempDir()
	for name, src := range templates {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := template.Load(os.DirFS(dir), template.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// env is a store, a clock, the providers and a seeded journey.
type env struct {
	t   testing.TB
	ctx context.Context
	db  interface {
		nudge.Store
		nudge.DeliveryStore
	}
	clock *nudgetest.Clock
	tw    *fakeTwilio
	mail  *mailSink
	set   *template.Set
	seq   atomic.Int64
	// purpose of the messages queue and queueMany write; default marketing.
	purpose string
}

// webinarJourney is the journey of the messages the tests queue: the
// dispatch re-check of the benchmarks reads it.
const webinarJourney = `id: webinar
name: Webinar reminders
trigger: {event: webinar.registered}
steps:
  - id: send
    email: {template: welcome}
  - id: wait
    wait: {for: 1h}
`

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, nudgetest.SQLite(t))
}

// newEnvOn is newEnv on the store db.
func newEnvOn(t testing.TB, db interface {
	nudge.Store
	nudge.DeliveryStore
}) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), db: db, clock: nudgetest.NewClock(nudgetest.Epoch),
		tw: newFakeTwilio(t), mail: startMailSink(t, true), set: loadTemplates(t)}
	if _, _, err := e.db.JourneyPublish(e.ctx, &nudge.JourneyPublishParams{ID: "webinar", Name: "Webinar reminders",
		Source: []byte(webinarJourney)}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) twilio(timeout time.Duration) *twilio.Sender {
	e.t.Helper()
	s, err := twilio.New(twilio.Config{BaseURL: e.tw.srv.URL, AccountSID: accountSID, AuthToken: authToken,
		From: fromNumber, Timeout: timeout})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) smtp() *smtp.Sender {
	e.t.Helper()
	s, err := smtp.New(smtp.Config{Host: "127.0.0.1", Port: e.mail.port, TLS: smtp.NoTLS,
		From: "Shop <shop@mail.example.com>", Clock: e.clock, Timeout: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func (e *env) worker(edit func(*delivery.Config)) *delivery.Worker {
	e.t.Helper()
	cfg := delivery.Config{
		Store: e.db, Clock: e.clock, Logger: quiet, Templates: e.set,
		Senders: map[string]nudge.Sender{nudge.ChannelSMS: e.twilio(5 * time.Second), nudge.ChannelEmail: e.smtp()},
		From:    map[string]string{nudge.ChannelEmail: "Webinars <webinars@mail.example.com>"},
	}
	if edit != nil {
		edit(&cfg)
	}
	w, err := delivery.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// contact stores a contact with a phone number and an email address.
func (e *env) contact(id, phone, email string) *nudge.Contact {
	e.t.Helper()
	c, _, err := e.db.ContactPut(e.ctx, &nudge.Contact{ID: id, Phone: phone, Email: email, Timezone: "America/New_York",
		Attributes: map[string]any{"first_name": "Ada"}}, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// queue commits an enrollment of c with one queued message, as the engine
// does, and returns the message id.
func (e *env) queue(c *nudge.Contact, channel, tmpl string) string {
	e.t.Helper()
	ids := e.queueMany([]*nudge.Contact{c}, channel, tmpl)
	return ids[0]
}

func (e *env) queueMany(cs []*nudge.Contact, channel, tmpl string) []string {
	e.t.Helper()
	now := e.clock.Now()
	commit := &nudge.EngineCommit{}
	var ids []string
	for _, c := range cs {
		n := e.seq.Add(1)
		en := &nudge.Enrollment{ID: fmt.Sprintf("en%08d", n), JourneyID: "webinar", Version: 1, ContactID: c.ID,
			Key: fmt.Sprint(n), State: nudge.EnrollmentWaiting, StepID: "wait", WakeAt: now.Add(time.Hour), EnteredAt: now,
			Event: &nudge.Event{Seq: n, MessageID: fmt.Sprint("ev", n), Type: "track", ContactID: c.ID,
				Name: "webinar.registered", Properties: map[string]any{"title": "Growth Loops 101"}, Timestamp: now, ReceivedAt: now}}
		m := &nudge.Message{ID: fmt.Sprintf("msg%08d", n), EnrollmentID: en.ID, ContactID: c.ID, JourneyID: "webinar",
			Version: 1, StepID: "send", Channel: channel, Template: tmpl, Purpose: e.purposeOr(),
			Status: nudge.MessageQueued, IdempotencyKey: en.ID + ":send", AvailableAt: now}
		commit.Enrollments = append(commit.Enrollments, en)
		commit.Messages = append(commit.Messages, m)
		ids = append(ids, m.ID)
	}
	if err := e.db.EngineCommit(e.ctx, commit, now); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func (e *env) purposeOr() string {
	if e.purpose == "" {
		return nudge.PurposeMarketing
	}
	return e.purpose
}

func (e *env) run(w *delivery.Worker) int {
	e.t.Helper()
	n, err := w.RunOnce(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) message(id string) *nudge.Message {
	e.t.Helper()
	m, err := e.db.MessageGet(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) history(id string) []*nudge.MessageStatus {
	e.t.Helper()
	h, err := e.db.MessageHistory(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func statuses(h []*nudge.MessageStatus) []string {
	var out []string
	for _, s := range h {
		out = append(out, s.Status)
	}
	return out
}

func (e *env) wantHistory(id string, want ...string) []*nudge.MessageStatus {
	e.t.Helper()
	h := e.history(id)
	if d := cmp.Diff(want, statuses(h)); d != "" {
		e.t.Errorf("history of %s (-want +got):\n%s", id, d)
	}
	return h
}

func last(h []*nudge.MessageStatus) *nudge.MessageStatus {
	if len(h) == 0 {
		return &nudge.MessageStatus{}
	}
	return h[len(h)-1]
}

func TestDeliverHappyPath(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	c := e.contact("c1", toOK, "ada@example.com")
	sms := e.queue(c, nudge.ChannelSMS, "reminder")
	email := e.queue(c, nudge.ChannelEmail, "welcome")

	if n := e.run(w); n != 2 {
		t.Errorf("RunOnce handled %d messages, want 2", n)
	}
	for _, id := range []string{sms, email} {
		m := e.message(id)
		if m.Status != nudge.MessageSent || m.ProviderID == "" || m.Attempts != 1 {
			t.Errorf("%s: status %s, provider id %q, attempts %d; want sent, an id, 1", id, m.Status, m.ProviderID, m.Attempts)
		}
		e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
	}
	if got, want := e.tw.lastBody(toOK), "Growth Loops 101 starts in 1 hour, Ada. Reply STOP to opt out."; got != want {
		t.Errorf("SMS body = %q, want %q", got, want)
	}
	mails := e.mail.messages()
	if len(mails) != 1 {
		t.Fatalf("%d emails arrived, want 1", len(mails))
	}
	data := string(mails[0].Data)
	for _, want := range []string{"Subject: You're registered: Growth Loops 101", "webinars@mail.example.com",
		"<b>Growth Loops 101</b>", "(Webinar reminders)", "Message-ID: <" + email} {
		if !strings.Contains(data, want) {
			t.Errorf("the email lacks %q:\n%s", want, data)
		}
	}
	if n := e.run(w); n != 0 {
		t.Errorf("a second RunOnce handled %d messages, want 0", n)
	}
}

func TestDeliverLogsink(t *testing.T) {
	e := newEnv(t)
	sink, err := logsink.New(logsink.Config{Channel: nudge.ChannelSMS, Logger: quiet, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(func(c *delivery.Config) { c.Senders[nudge.ChannelSMS] = sink })
	id := e.queue(e.contact("c1", toOK, ""), nudge.ChannelSMS, "reminder")
	e.run(w)
	sent := sink.Sent()
	if len(sent) != 1 || sent[0].MessageID != id || sent[0].To != toOK || sent[0].IdempotencyKey == "" {
		t.Fatalf("logsink recorded %+v", sent)
	}
	if m := e.message(id); m.Status != nudge.MessageSent || !strings.HasPrefix(m.ProviderID, "log_") {
		t.Errorf("message %s, provider id %q", m.Status, m.ProviderID)
	}
}

func TestDeliverPermanentFailure(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	c := e.contact("c1", toInvalid, "nobody@example.net")
	sms := e.queue(c, nudge.ChannelSMS, "reminder")
	email := e.queue(c, nudge.ChannelEmail, "welcome")
	e.run(w)
	for id, code := range map[string]string{sms: "21211", email: "550"} {
		m := e.message(id)
		if m.Status != nudge.MessageFailed || !strings.HasPrefix(m.Error, code+": ") || m.Attempts != 1 {
			t.Errorf("%s: %s, error %q, attempts %d; want failed with %s", id, m.Status, m.Error, m.Attempts, code)
		}
		h := e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageFailed)
		if got := last(h).Detail["code"]; got != code {
			t.Errorf("%s: history code %v, want %s", id, got, code)
		}
	}
	e.clock.Advance(2 * time.Hour)
	e.run(w)
	if n := e.tw.count(toInvalid); n != 1 {
		t.Errorf("Twilio was called %d times, want 1", n)
	}
}

func TestDeliverProviderOptOut(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	c := e.contact("c1", toOptedOut, "")
	id := e.queue(c, nudge.ChannelSMS, "reminder")
	e.run(w)
	m := e.message(id)
	if m.Status != nudge.MessageFailed || !strings.HasPrefix(m.Error, "21610") {
		t.Errorf("message %s, error %q; want failed, 21610", m.Status, m.Error)
	}
	states, err := e.db.ConsentList(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range states {
		if s.Channel == nudge.ChannelSMS {
			got = append(got, s.Purpose+"="+s.Status+"/"+s.Source)
		}
	}
	want := []string{"marketing=opted_out/provider", "transactional=opted_out/provider"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("SMS consent (-want +got):\n%s", d)
	}
	sup, err := e.db.SuppressionsFor(e.ctx, []*nudge.Contact{c})
	if err != nil {
		t.Fatal(err)
	}
	if s := sup[c.ID]; len(s) != 1 || s[0].Reason != nudge.SuppressProviderOptOut || s[0].Channel != nudge.ChannelSMS {
		t.Errorf("suppressions %+v, want one provider_opt_out", s)
	}
}

func TestDeliverRetryAfter(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(c *delivery.Config) { c.Backoff = func(int) time.Duration { return time.Second } })
	id := e.queue(e.contact("c1", toBusyOnce, ""), nudge.ChannelSMS, "reminder")
	start := e.clock.Now()
	e.run(w)
	m := e.message(id)
	if want := start.Add(7 * time.Second); m.Status != nudge.MessageQueued || !m.AvailableAt.Equal(want) {
		t.Fatalf("after a 429: %s, available at %v; want queued at %v (Retry-After 7 beats a 1s backoff)", m.Status, m.AvailableAt, want)
	}
	e.clock.Advance(6 * time.Second)
	e.run(w)
	if n := e.tw.count(toBusyOnce); n != 1 {
		t.Fatalf("sent again before Retry-After: %d calls", n)
	}
	e.clock.Advance(time.Second)
	e.run(w)
	m = e.message(id)
	if m.Status != nudge.MessageSent || m.Attempts != 2 {
		t.Errorf("after the retry: %s, attempts %d; want sent, 2", m.Status, m.Attempts)
	}
	e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
}

func TestDeliverBackoffThenMaxAge(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(c *delivery.Config) { c.MaxAge = 10 * time.Minute })
	id := e.queue(e.contact("c1", toBroken, ""), nudge.ChannelSMS, "reminder")
	start := e.clock.Now()
	var delays []time.Duration
	for range 20 {
		e.run(w)
		m := e.message(id)
		if m.Status != nudge.MessageQueued {
			break
		}
		delays = append(delays, m.AvailableAt.Sub(e.clock.Now()))
		e.clock.Set(m.AvailableAt)
	}
	m := e.message(id)
	h := e.history(id)
	if m.Status != nudge.MessageFailed || last(h).Detail["reason"] != delivery.ReasonMaxAge {
		t.Fatalf("%s (%v), want failed max_age; history %v", m.Status, last(h).Detail, statuses(h))
	}
	if len(delays) < 3 {
		t.Fatalf("retried %d times before max age, want ≥ 3 (delays %v)", len(delays), delays)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] {
			t.Errorf("delays %v do not grow", delays)
		}
	}
	if e.clock.Now().Sub(start) > 10*time.Minute {
		t.Errorf("the last attempt was %v after the message was queued, past the max age", e.clock.Now().Sub(start))
	}
	if got, want := e.tw.count(toBroken), len(delays)+1; got != want {
		t.Errorf("%d calls, want %d", got, want)
	}
}

func TestDefaultBackoff(t *testing.T) {
	for attempt, base := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 5: 8 * time.Minute, 7: 32 * time.Minute, 20: time.Hour} {
		d := delivery.DefaultBackoff(attempt, "msg1")
		if d < base*3/4 || d > min(base*5/4, time.Hour) {
			t.Errorf("attempt %d: %v, want within 25%% of %v, at most 1h", attempt, d, base)
		}
		if d != delivery.DefaultBackoff(attempt, "msg1") {
			t.Errorf("attempt %d: the jitter is not deterministic", attempt)
		}
	}
	if delivery.DefaultBackoff(3, "msg1") == delivery.DefaultBackoff(3, "msg2") &&
		delivery.DefaultBackoff(3, "msg2") == delivery.DefaultBackoff(3, "msg3") {
		t.Error("messages get the same delay: no jitter")
	}
}

func TestDeliverSMSTimeoutIsNotResent(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(c *delivery.Config) { c.Senders[nudge.ChannelSMS] = e.twilio(200 * time.Millisecond) })
	id := e.queue(e.contact("c1", toHang, ""), nudge.ChannelSMS, "reminder")
	e.run(w)
	m := e.message(id)
	if m.Status != nudge.MessageOutcomeUnknown || m.Attempts != 1 {
		t.Errorf("after a timeout: %s, attempts %d; want outcome_unknown, 1", m.Status, m.Attempts)
	}
	e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageOutcomeUnknown)
	for range 3 {
		e.clock.Advance(time.Hour)
		e.run(w)
	}
	if n := e.tw.count(toHang); n != 1 {
		t.Errorf("Twilio was called %d times, want 1: SMS is at-most-once", n)
	}
}

// dieMidSend claims a message and marks it sending, as a process would
// just before its provider call, and then "dies".
func (e *env) dieMidSend(lease time.Duration) {
	e.t.Helper()
	ms, err := e.db.MessageClaim(e.ctx, e.clock.Now(), 10, lease)
	if err != nil {
		e.t.Fatal(err)
	}
	var us []*nudge.MessageUpdate
	for _, m := range ms {
		us = append(us, &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageSending, Attempts: 1})
	}
	if _, err := e.db.MessageUpdate(e.ctx, us, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func TestDeliverRecoverStuck(t *testing.T) {
	for _, tc := range []struct {
		name        string
		atLeastOnce bool
		channel     string
		want        []string
	}{
		{"sms", true, nudge.ChannelSMS,
			[]string{nudge.MessageQueued, nudge.MessageSending, nudge.MessageOutcomeUnknown}},
		{"email at most once", false, nudge.ChannelEmail,
			[]string{nudge.MessageQueued, nudge.MessageSending, nudge.MessageOutcomeUnknown}},
		{"email at least once", true, nudge.ChannelEmail,
			[]string{nudge.MessageQueued, nudge.MessageSending, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			const lease = time.Minute
			w := e.worker(func(c *delivery.Config) { c.Lease = lease; c.EmailAtLeastOnce = tc.atLeastOnce })
			tmpl := map[string]string{nudge.ChannelSMS: "reminder", nudge.ChannelEmail: "welcome"}[tc.channel]
			id := e.queue(e.contact("c1", toOK, "ada@example.com"), tc.channel, tmpl)
			e.dieMidSend(lease)

			// While the dead process's claim holds, nothing happens.
			e.clock.Advance(lease / 2)
			if n := e.run(w); n != 0 {
				t.Errorf("RunOnce within the lease handled %d messages", n)
			}
			e.clock.Advance(lease)
			e.run(w)
			e.run(w)
			h := e.wantHistory(id, tc.want...)
			if tc.want[2] == nudge.MessageOutcomeUnknown && last(h).Detail["reason"] != delivery.ReasonStuck {
				t.Errorf("detail %v, want reason stuck", last(h).Detail)
			}
			sent := e.tw.count(toOK) + len(e.mail.messages())
			if want := map[bool]int{true: 1, false: 0}[last(h).Status == nudge.MessageSent]; sent != want {
				t.Errorf("%d sends, want %d", sent, want)
			}
		})
	}
}

func TestDeliverRecheckCancels(t *testing.T) {
	e := newEnv(t)
	var asked [][]string
	w := e.worker(func(c *delivery.Config) {
		c.Recheck = func(_ context.Context, ms []*nudge.Message, cs map[string]*nudge.Contact, ens map[string]*nudge.Enrollment) []string {
			reasons := make([]string, len(ms))
			var ids []string
			for i, m := range ms {
				ids = append(ids, m.ID)
				if ens[m.EnrollmentID] == nil {
					t.Errorf("the re-check of %s was not given its enrollment %s", m.ID, m.EnrollmentID)
				}
				if cs[m.ContactID].ID == "c2" {
					reasons[i] = "goal_reached"
				}
			}
			asked = append(asked, ids)
			return reasons
		}
	})
	ok := e.queue(e.contact("c1", toOK, ""), nudge.ChannelSMS, "reminder")
	gone := e.queue(e.contact("c2", "+14155550102", ""), nudge.ChannelSMS, "reminder")
	e.run(w)
	if want := [][]string{{ok, gone}}; !cmp.Equal(asked, want) {
		t.Errorf("re-checked %q, want %q: the pass's messages at once", asked, want)
	}
	e.wantHistory(ok, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
	h := e.wantHistory(gone, nudge.MessageQueued, nudge.MessageCancelled)
	if got := last(h).Detail["reason"]; got != "goal_reached" {
		t.Errorf("cancel reason %v, want goal_reached", got)
	}
	if n := e.tw.count("+14155550102"); n != 0 {
		t.Errorf("the cancelled message was sent %d times", n)
	}
}

// TestDeliverRecheckShort: a re-check that does not answer for every
// message fails the pass before anything is marked or sent.
func TestDeliverRecheckShort(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(c *delivery.Config) {
		c.Recheck = func(_ context.Context, ms []*nudge.Message, _ map[string]*nudge.Contact, _ map[string]*nudge.Enrollment) []string {
			return make([]string, len(ms)-1)
		}
	})
	id := e.queue(e.contact("c1", toOK, ""), nudge.ChannelSMS, "reminder")
	e.queue(e.contact("c2", "+14155550102", ""), nudge.ChannelSMS, "reminder")
	if _, err := w.RunOnce(e.ctx); err == nil {
		t.Error("RunOnce with a re-check that answered for 1 of 2 messages: no error")
	}
	e.wantHistory(id, nudge.MessageQueued)
	if n := e.tw.count(toOK); n != 0 {
		t.Errorf("sent %d times", n)
	}
}

func TestDeliverFailsBeforeSending(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(c *delivery.Config) { delete(c.Senders, nudge.ChannelEmail) })
	c := e.contact("c1", toOK, "ada@example.com")
	noPhone := e.contact("c2", "", "bob@example.com")
	cases := map[string]string{
		e.queue(c, nudge.ChannelSMS, "missing"):        delivery.ReasonTemplateError,
		e.queue(c, nudge.ChannelSMS, "huge"):           delivery.ReasonSMSLint,
		e.queue(noPhone, nudge.ChannelSMS, "reminder"): delivery.ReasonNoAddress,
		e.queue(c, nudge.ChannelEmail, "welcome"):      delivery.ReasonNoSender,
	}
	e.run(w)
	for id, reason := range cases {
		h := e.wantHistory(id, nudge.MessageQueued, nudge.MessageFailed)
		if got := last(h).Detail["reason"]; got != reason {
			t.Errorf("%s: reason %v, want %s (%v)", id, got, reason, last(h).Detail)
		}
	}
	if n := e.tw.count(toOK); n != 0 {
		t.Errorf("Twilio was called %d times", n)
	}
}

func TestDeliverMaxAgeBeforeSending(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	id := e.queue(e.contact("c1", toOK, ""), nudge.ChannelSMS, "reminder")
	e.clock.Advance(25 * time.Hour)
	e.run(w)
	h := e.wantHistory(id, nudge.MessageQueued, nudge.MessageFailed)
	if got := last(h).Detail["reason"]; got != delivery.ReasonMaxAge {
		t.Errorf("reason %v, want max_age", got)
	}
}

func TestDeliverWebhookWithoutSenderIsParked(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	id := e.queue(e.contact("c1", toOK, ""), nudge.ChannelWebhook, "")
	e.run(w)
	e.clock.Advance(48 * time.Hour) // past the maximum age: parked webhooks do not fail
	e.run(w)
	if m := e.message(id); m.Status != nudge.MessageQueued {
		t.Errorf("webhook message %s, want queued", m.Status)
	}
	e.wantHistory(id, nudge.MessageQueued)
}

func TestDeliverWebhookSender(t *testing.T) {
	e := newEnv(t)
	sink, err := logsink.New(logsink.Config{Channel: nudge.ChannelWebhook, Logger: quiet, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	w := e.worker(func(c *delivery.Config) { c.Senders[nudge.ChannelWebhook] = sink })
	c := e.contact("c1", toOK, "")
	now := e.clock.Now()
	en := &nudge.Enrollment{ID: "enw", JourneyID: "webinar", Version: 1, ContactID: c.ID, State: nudge.EnrollmentWaiting,
		StepID: "wait", WakeAt: now.Add(time.Hour), EnteredAt: now}
	m := &nudge.Message{ID: "msgw", EnrollmentID: en.ID, ContactID: c.ID, JourneyID: "webinar", Version: 1, StepID: "hook",
		Channel: nudge.ChannelWebhook, Status: nudge.MessageQueued, IdempotencyKey: "enw:hook",
		Details: map[string]any{"url": "https://crm.example.com/hook"}}
	if err := e.db.EngineCommit(e.ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{en}, Messages: []*nudge.Message{m}}, now); err != nil {
		t.Fatal(err)
	}
	e.run(w)
	sent := sink.Sent()
	if len(sent) != 1 || sent[0].To != "https://crm.example.com/hook" || !strings.Contains(sent[0].Text, `"id":"msgw"`) {
		t.Fatalf("webhook sink got %+v", sent)
	}
	e.wantHistory("msgw", nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
}

// probeSender answers after checking, at each call, how many messages the
// store holds in status sending: what a crash at that moment would leave
// with an unknown outcome.
type probeSender struct {
	e *env

	mu        sync.Mutex
	calls     int
	inFlight  int
	maxFlight int
	maxMarked int
}

func (p *probeSender) Channel() string { return nudge.ChannelSMS }

func (p *probeSender) Send(ctx context.Context, o *nudge.Outbound) (*nudge.SendResult, error) {
	p.mu.Lock()
	p.calls++
	p.inFlight++
	p.maxFlight = max(p.maxFlight, p.inFlight)
	p.mu.Unlock()
	ms, err := p.e.db.MessageList(ctx, &nudge.MessageListParams{Status: nudge.MessageSending, Limit: 10000})
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Millisecond) // let the other senders overlap
	p.mu.Lock()
	p.maxMarked = max(p.maxMarked, len(ms))
	p.inFlight--
	p.mu.Unlock()
	return &nudge.SendResult{ProviderID: "SM" + o.MessageID, Status: nudge.MessageSent}, nil
}

// However marks are grouped, no more messages are marked sending at once
// than there are senders: a crash leaves at most Concurrency messages
// with an unknown outcome. And every message is sent, once.
func TestDeliverMarksAtMostConcurrency(t *testing.T) {
	e := newEnv(t)
	p := &probeSender{e: e}
	w := e.worker(func(c *delivery.Config) {
		c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: p}
		c.Concurrency = 8
		c.Batch = 100
	})
	ids := e.queueMany(e.contacts("c", 100), nudge.ChannelSMS, "reminder")
	for e.run(w) > 0 {
	}
	if p.calls != len(ids) {
		t.Errorf("%d provider calls for %d messages", p.calls, len(ids))
	}
	if p.maxMarked > 8 {
		t.Errorf("%d messages were sending at once; want at most the 8 senders", p.maxMarked)
	}
	if p.maxFlight < 2 {
		t.Errorf("at most %d provider calls at once; want the senders to overlap", p.maxFlight)
	}
	for _, id := range ids {
		if m := e.message(id); m.Status != nudge.MessageSent {
			t.Errorf("message %s is %s, want sent", id, m.Status)
		}
	}
}

// probed is a worker on s that texts through a probeSender.
func (e *env) probed(s delivery.Store, concurrency, batch, claims int) (*delivery.Worker, *probeSender) {
	e.t.Helper()
	p := &probeSender{e: e}
	return e.worker(func(c *delivery.Config) {
		c.Store = s
		c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: p}
		c.Concurrency = concurrency
		c.Batch = batch
		c.Claims = claims
	}), p
}

// markCounter is a store that records, for each MessageUpdate call that
// marks messages sending, how many it marks.
type markCounter struct {
	delivery.Store

	mu    sync.Mutex
	marks []int
}

func (s *markCounter) MessageUpdate(ctx context.Context, us []*nudge.MessageUpdate, now time.Time) ([]bool, error) {
	n := 0
	for _, u := range us {
		if u.Status == nudge.MessageSending {
			n++
		}
	}
	if n > 0 {
		s.mu.Lock()
		s.marks = append(s.marks, n)
		s.mu.Unlock()
	}
	return s.Store.MessageUpdate(ctx, us, now)
}

// The marks of a pass go in groups of a quarter of the senders to its
// end: once every message is prepared, the last ones are not marked one
// free sender at a time. Only the pass's last group may be smaller.
func TestDeliverMarksInGroupsToTheEnd(t *testing.T) {
	e := newEnv(t)
	s := &markCounter{Store: e.db}
	w, p := e.probed(s, 16, 100, 0) // groups of 4
	e.queueMany(e.contacts("c", 100), nudge.ChannelSMS, "reminder")
	if n := e.run(w); n != 100 {
		t.Fatalf("the pass handled %d messages, want 100", n)
	}
	total, small := 0, 0
	for i, n := range s.marks {
		total += n
		if n < 4 && i < len(s.marks)-1 {
			small++
		}
	}
	if small > 0 {
		t.Errorf("%d mark calls before the last marked fewer than 4 messages (marks per call: %v)", small, s.marks)
	}
	if total != 100 {
		t.Errorf("%d marks for 100 messages", total)
	}
	if p.maxMarked > 16 {
		t.Errorf("%d messages were sending at once; want at most the 16 senders", p.maxMarked)
	}
}

// callCounter counts a store method's calls; call failAt (1 the first)
// is to fail.
type callCounter struct {
	mu     sync.Mutex
	calls  int
	failAt int
}

// fail counts a call and tells whether it is to fail.
func (c *callCounter) fail() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.calls == c.failAt
}

// failingContacts is a store whose ContactGetMany fails at call failAt.
type failingContacts struct {
	delivery.Store
	callCounter
}

func (s *failingContacts) ContactGetMany(ctx context.Context, ids []string) (map[string]*nudge.Contact, error) {
	if s.fail() {
		return nil, errors.New("disk I/O error")
	}
	return s.Store.ContactGetMany(ctx, ids)
}

// A pass reads and re-checks its batch in parts, each twice the one
// before from twice the senders, so that the first messages go while the
// rest are read. A store failure in a later part's read keeps what the
// parts before it did, and leaves the rest queued for a later pass.
func TestDeliverReadsInParts(t *testing.T) {
	e := newEnv(t)
	s := &failingContacts{Store: e.db, callCounter: callCounter{failAt: 3}}
	var (
		mu    sync.Mutex
		sizes []int
	)
	w := e.worker(func(c *delivery.Config) {
		c.Store = s
		c.Concurrency = 4
		c.Batch = 100
		c.Lease = time.Minute
		c.Recheck = func(_ context.Context, ms []*nudge.Message, _ map[string]*nudge.Contact, _ map[string]*nudge.Enrollment) []string {
			mu.Lock()
			sizes = append(sizes, len(ms))
			mu.Unlock()
			return make([]string, len(ms))
		}
	})
	ids := e.queueMany(e.contacts("c", 100), nudge.ChannelSMS, "reminder")
	if _, err := w.RunOnce(e.ctx); err == nil || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("RunOnce with the third part's contacts not read: error %v, want the store's", err)
	}
	if want := []int{8, 16}; !cmp.Equal(sizes, want) {
		t.Errorf("re-checked parts of %v, want %v", sizes, want)
	}
	for i, id := range ids {
		if i < 24 {
			e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
		} else {
			e.wantHistory(id, nudge.MessageQueued)
		}
	}
	e.clock.Advance(2 * time.Minute) // the claims of the rest expire
	sizes = nil
	if n := e.run(w); n != 76 {
		t.Errorf("the next pass handled %d messages, want the 76 left", n)
	}
	if want := []int{8, 16, 32, 20}; !cmp.Equal(sizes, want) {
		t.Errorf("re-checked parts of %v, want %v", sizes, want)
	}
	for _, id := range ids {
		e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
	}
	for i := range 100 {
		if to := fmt.Sprintf("+1415%07d", i); e.tw.count(to) != 1 {
			t.Errorf("%s was texted %d times, want once", to, e.tw.count(to))
		}
	}
}

// failingClaims is a store whose MessageClaim fails at call failAt.
type failingClaims struct {
	delivery.Store
	callCounter
}

func (s *failingClaims) MessageClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.Message, error) {
	if s.fail() {
		return nil, errors.New("database is locked")
	}
	return s.Store.MessageClaim(ctx, now, limit, lease)
}

// While its claims come back full, a pass claims again as its last part
// is read, Config.Claims batches at most: the senders go on from one batch
// to the next. Each message is still sent once, through sending, and no
// more are marked sending at once than there are senders. A failed claim
// keeps what the batches before it did.
func TestDeliverClaimsAgainWhileFull(t *testing.T) {
	const batch, claims = 10, 3
	e := newEnv(t)
	s := &failingClaims{Store: e.db}
	w, p := e.probed(s, 4, batch, claims)
	ids := e.queueMany(e.contacts("c", (claims+2)*batch+5), nudge.ChannelSMS, "reminder")
	if n := e.run(w); n != claims*batch {
		t.Errorf("the first pass handled %d messages, want %d (%d full claims)", n, claims*batch, claims)
	}
	if s.calls != claims {
		t.Errorf("the first pass claimed %d times, want %d", s.calls, claims)
	}
	s.failAt = s.calls + 2 // the second claim of the next pass
	if n, err := w.RunOnce(e.ctx); err == nil || !strings.Contains(err.Error(), "database is locked") || n != batch {
		t.Fatalf("a pass whose second claim failed: %d messages, error %v; want %d and the store's error", n, err, batch)
	}
	if n := e.run(w); n != batch+5 {
		t.Errorf("the last pass handled %d messages, want the %d left (a full claim, then the rest)", n, batch+5)
	}
	if n := e.run(w); n != 0 {
		t.Errorf("a pass after the queue emptied handled %d messages", n)
	}
	if p.calls != len(ids) {
		t.Errorf("%d provider calls for %d messages", p.calls, len(ids))
	}
	if p.maxMarked > 4 {
		t.Errorf("%d messages were sending at once; want at most the 4 senders", p.maxMarked)
	}
	for _, id := range ids {
		e.wantHistory(id, nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent)
	}
}
