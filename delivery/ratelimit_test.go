package delivery_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/delivery"
)

// sink is a log sink that keeps every message with the (fake) time it was
// sent.
func (e *env) sink(channel string) *logsink.Sender {
	e.t.Helper()
	s, err := logsink.New(logsink.Config{Channel: channel, Logger: quiet, Clock: e.clock, Capacity: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// contacts stores n contacts with a phone and an email address.
func (e *env) contacts(prefix string, n int) []*nudge.Contact {
	e.t.Helper()
	cs := make([]*nudge.Contact, n)
	for i := range cs {
		cs[i] = e.contact(fmt.Sprintf("%s%05d", prefix, i), fmt.Sprintf("+1415%07d", i), fmt.Sprintf("%s%d@example.com", prefix, i))
	}
	return cs
}

// runFor drives w as the server's loop does, for d of fake time in steps
// of step: at each step, passes until there is nothing to do.
func (e *env) runFor(w *delivery.Worker, d, step time.Duration) {
	e.t.Helper()
	for end := e.clock.Now().Add(d); e.clock.Now().Before(end); e.clock.Advance(step) {
		for e.run(w) > 0 {
		}
	}
}

// perWindow counts the records sent in [from, from+window), and the most
// in any whole second of it.
func perWindow(rs []logsink.Record, from time.Time, window time.Duration) (total, maxPerSecond int) {
	perSecond := map[int64]int{}
	for _, r := range rs {
		off := r.At.Sub(from)
		if off < 0 || off >= window {
			continue
		}
		total++
		perSecond[int64(off/time.Second)]++
		maxPerSecond = max(maxPerSecond, perSecond[int64(off/time.Second)])
	}
	return total, maxPerSecond
}

// within5 reports whether got is within 5% of want.
func within5(got int, want float64) bool {
	return math.Abs(float64(got)-want) <= 0.05*want
}

// carrierRates are the carriers' usual rates of US sending numbers.
var carrierRates = []struct {
	name, from string
	rate       float64
}{
	{"long code 1 MPS", "+14155550100", delivery.RateLongCode},
	{"toll-free 3 MPS", "+18445550100", delivery.RateTollFree},
	{"short code 100 MPS", "55501", delivery.RateShortCode},
}

// The carriers' usual rates for a US long code, a toll-free number and a
// short code, each with a backlog bigger than a minute's worth: over a
// minute the sends are within 5% of the rate, and no second holds more than
// the rate plus one.
func TestRateLimitAccuracy(t *testing.T) {
	for _, tc := range carrierRates {
		for _, slots := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/store slots %v", tc.name, slots), func(t *testing.T) {
				e := newEnv(t)
				sms := e.sink(nudge.ChannelSMS)
				w := e.worker(func(c *delivery.Config) {
					c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: sms}
					c.From = map[string]string{nudge.ChannelSMS: tc.from}
					c.Limits = delivery.RateLimits{SenderDefaults: true}
					e.storeSlots(c, slots)
				})
				backlog := int(tc.rate*60*1.5) + 10
				e.queueMany(e.contacts("c", backlog), nudge.ChannelSMS, "reminder")
				start := e.clock.Now()
				e.runFor(w, 61*time.Second, 100*time.Millisecond)

				total, peak := perWindow(sms.Records(), start, time.Minute)
				t.Logf("%v MPS: %d sent in the first minute (%.2f%% off), at most %d in a second", tc.rate, total, 100*(float64(total)/(tc.rate*60)-1), peak)
				if want := tc.rate * 60; !within5(total, want) {
					t.Errorf("sent %d in a minute at %v MPS; want %v ± 5%%", total, tc.rate, want)
				}
				if limit := int(math.Ceil(tc.rate)) + 1; peak > limit {
					t.Errorf("%d sent within one second at %v MPS; want at most %d", peak, tc.rate, limit)
				}
				if total >= backlog {
					t.Fatalf("the backlog of %d ran out: the test measures nothing", backlog)
				}
			})
		}
	}
}

// storeSlots keeps c's rate-limit slots in the store when slots is set
// (on SQLite, one process: the results must be the same as in memory).
func (e *env) storeSlots(c *delivery.Config, slots bool) {
	if slots {
		c.Slots = e.db.(nudge.RateSlotStore)
	}
}

// A long code's backlog (1 MPS) queued before a burst of email, with a
// workspace limit both share: the email goes at its own provider's rate
// from the first second. The SMS waiting for their number's slots hold no
// workspace slots (that would have cost the email ten seconds here).
func TestRateLimitOneSenderDoesNotBlockAnother(t *testing.T) {
	for _, slots := range []bool{false, true} {
		t.Run(fmt.Sprintf("store slots %v", slots), func(t *testing.T) { testOneSenderDoesNotBlockAnother(t, newEnv(t), 1, slots) })
	}
}

// testOneSenderDoesNotBlockAnother runs the test above with nodes Workers
// on e's store passing concurrently, each with its own sinks.
func testOneSenderDoesNotBlockAnother(t *testing.T, e *env, nodes int, slots bool) {
	var ws []*delivery.Worker
	var sinks []*logsink.Sender
	for range nodes {
		sms, mail := e.sink(nudge.ChannelSMS), e.sink(nudge.ChannelEmail)
		sinks = append(sinks, sms, mail)
		ws = append(ws, e.worker(func(c *delivery.Config) {
			c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: sms, nudge.ChannelEmail: mail}
			c.From = map[string]string{nudge.ChannelSMS: "+14155550100", nudge.ChannelEmail: "news@mail.example.com"}
			c.Limits = delivery.RateLimits{Sender: map[string]float64{"+14155550100": 1},
				Provider: map[string]float64{nudge.ChannelEmail: 50}, Workspace: 60}
			e.storeSlots(c, slots)
		}))
	}
	e.queueMany(e.contacts("s", 600), nudge.ChannelSMS, "reminder")
	e.clock.Advance(time.Millisecond) // the email is queued after the SMS
	e.queueMany(e.contacts("m", 3600), nudge.ChannelEmail, "welcome")
	start := e.clock.Now()
	e.runNodesFor(ws, 61*time.Second, 100*time.Millisecond)

	var sms, mail []logsink.Record
	for i := 0; i < len(sinks); i += 2 {
		sms, mail = append(sms, sinks[i].Records()...), append(mail, sinks[i+1].Records()...)
	}
	smsSent, smsPeak := perWindow(sms, start, time.Minute)
	mailSent, mailPeak := perWindow(mail, start, time.Minute)
	t.Logf("%d node(s): SMS %d in a minute, at most %d in a second; email %d, at most %d", nodes, smsSent, smsPeak, mailSent, mailPeak)
	if !within5(smsSent, 60) || smsPeak > 2 {
		t.Errorf("SMS: %d in a minute, at most %d in a second; want 60 ± 5%%, at most 2", smsSent, smsPeak)
	}
	if !within5(mailSent, 3000) || mailPeak > 51 {
		t.Errorf("email: %d in a minute, at most %d in a second; want 3000 ± 5%%, at most 51", mailSent, mailPeak)
	}
	if first, _ := perWindow(mail, start, time.Second); first < 40 {
		t.Errorf("email in the first second: %d; want about 50: the SMS backlog held it", first)
	}
	if _, peak := perWindow(append(sms, mail...), start, time.Minute); peak > 61 {
		t.Errorf("%d messages within one second; want at most the workspace's 60 + 1", peak)
	}
}

// A backlog that cannot go before its maximum age fails at once with the
// reason, instead of waiting to fail later or holding slots.
func TestRateLimitPastMaxAgeFails(t *testing.T) {
	for _, slots := range []bool{false, true} {
		t.Run(fmt.Sprintf("store slots %v", slots), func(t *testing.T) { testPastMaxAgeFails(t, slots) })
	}
}

func testPastMaxAgeFails(t *testing.T, slots bool) {
	e := newEnv(t)
	sms := e.sink(nudge.ChannelSMS)
	w := e.worker(func(c *delivery.Config) {
		c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: sms}
		c.From = map[string]string{nudge.ChannelSMS: "+14155550100"}
		c.Limits = delivery.RateLimits{SenderDefaults: true}
		c.MaxAge = 10 * time.Second
		e.storeSlots(c, slots)
	})
	ids := e.queueMany(e.contacts("c", 30), nudge.ChannelSMS, "reminder")
	e.run(w)
	failed := 0
	for _, id := range ids {
		if m := e.message(id); m.Status == nudge.MessageFailed {
			failed++
			if got := last(e.history(id)).Detail["reason"]; got != delivery.ReasonRateLimit {
				t.Errorf("%s failed with reason %v, want %s", id, got, delivery.ReasonRateLimit)
			}
		}
	}
	// Slots at 0, 1, …, 10 s are within the maximum age: 11 wait or go.
	if failed != 19 {
		t.Errorf("%d failed at once; want 19", failed)
	}
	e.runFor(w, 11*time.Second, 250*time.Millisecond)
	if n := len(sms.Records()); n != 11 {
		t.Errorf("%d sent; want the 11 that had a slot", n)
	}
}

func TestDefaultSenderRate(t *testing.T) {
	for from, want := range map[string]float64{
		"+14155550100":          delivery.RateLongCode,
		"+18005550100":          delivery.RateTollFree,
		"+18885550100":          delivery.RateTollFree,
		"55501":                 delivery.RateShortCode,
		"555012":                delivery.RateShortCode,
		"+447700900123":         0, // not North American
		"MG0000000000000000000": 0, // a messaging service: its pool decides
		"news@mail.example.com": 0,
		"":                      0,
	} {
		if got := delivery.DefaultSenderRate(from); got != want {
			t.Errorf("DefaultSenderRate(%q) = %v, want %v", from, got, want)
		}
	}
}

func TestParseRateLimits(t *testing.T) {
	l, err := delivery.ParseRateLimits(" from:+14155550100=1, from:default, sms=100,email=50.5 ,workspace=150")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "from:+14155550100=1,from:default,email=50.5,sms=100,workspace=150"; got != want {
		t.Errorf("parsed as %q, want %q", got, want)
	}
	if l, err := delivery.ParseRateLimits(""); err != nil || l.String() != "" {
		t.Errorf(`ParseRateLimits("") = %q, %v; want no limits`, l.String(), err)
	}
	for in, want := range map[string]string{
		"sms=100,fast":      `item 2 "fast": want KEY=RATE`,
		"sms=0":             `item 1 "sms=0": the rate must be a positive number`,
		"sms=-1":            `the rate must be a positive number`,
		"sms=lots":          `the rate must be a positive number`,
		"whatsapp=3":        `unknown key "whatsapp"`,
		"from:=3":           `unknown key "from:"`,
		"workspace=1,sms=x": `item 2 "sms=x"`,
	} {
		_, err := delivery.ParseRateLimits(in)
		if err == nil || !strings.Contains(err.Error(), want) || nudge.ErrorCode(err) != nudge.EINVALID {
			t.Errorf("ParseRateLimits(%q) = %v; want EINVALID containing %q", in, err, want)
		}
	}
}

func TestNewRejectsNegativeRate(t *testing.T) {
	e := newEnv(t)
	_, err := delivery.New(delivery.Config{Store: e.db, Limits: delivery.RateLimits{Provider: map[string]float64{"sms": -1}}})
	if nudge.ErrorCode(err) != nudge.EINVALID || !strings.Contains(err.Error(), "provider sms") {
		t.Errorf("New with a negative rate: %v; want EINVALID naming the provider", err)
	}
}
