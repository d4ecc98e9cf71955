package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/delivery"
)

func (e *env) providers() map[string]*nudge.ProviderStatus {
	e.t.Helper()
	ps, err := e.db.ProviderList(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*nudge.ProviderStatus{}
	for _, p := range ps {
		out[p.Channel+"/"+p.Provider] = p
	}
	return out
}

// TestProviderStatus: a refusal by Twilio and by the SMTP server is
// recorded as each provider's last error, masked; a later success is
// recorded beside it, and the hour counts both.
func TestProviderStatus(t *testing.T) {
	e := newEnv(t)
	w := e.worker(nil)
	bad := e.contact("c1", toInvalid, "nobody@example.net")
	e.queue(bad, nudge.ChannelSMS, "reminder")
	e.queue(bad, nudge.ChannelEmail, "welcome")
	failedAt := e.clock.Now()
	e.run(w)

	ps := e.providers()
	tw, mail := ps["sms/twilio"], ps["email/smtp"]
	if tw == nil || mail == nil {
		t.Fatalf("provider statuses %v; want sms/twilio and email/smtp", ps)
	}
	if want := "21211: The 'To' number [phone] is not a valid phone number."; tw.LastError != want || !tw.LastErrorAt.Equal(failedAt) {
		t.Errorf("twilio last error %q at %v; want %q at %v", tw.LastError, tw.LastErrorAt, want, failedAt)
	}
	if !tw.LastSuccessAt.IsZero() {
		t.Errorf("twilio last success %v; want none yet", tw.LastSuccessAt)
	}
	if !strings.HasPrefix(mail.LastError, "550: ") || strings.Contains(mail.LastError, "nobody@example.net") {
		t.Errorf("smtp last error %q; want the 550 refusal without the address", mail.LastError)
	}

	e.clock.Advance(time.Minute)
	okAt := e.clock.Now()
	e.queue(e.contact("c2", toOK, "ada@example.com"), nudge.ChannelSMS, "reminder")
	e.run(w)
	tw = e.providers()["sms/twilio"]
	if !tw.LastSuccessAt.Equal(okAt) || !tw.LastErrorAt.Equal(failedAt) || !strings.HasPrefix(tw.LastError, "21211: ") {
		t.Errorf("twilio %+v; want last success at %v and the 21211 error of %v kept", tw, okAt, failedAt)
	}
	if s, f := tw.HourCounts(okAt); s != 1 || f != 1 {
		t.Errorf("twilio this hour: %d successes, %d errors; want 1 and 1", s, f)
	}
}

// recordCounter is the real store, counting the provider reports written.
type recordCounter struct {
	delivery.Store
	calls, reports int
}

func (r *recordCounter) ProviderRecord(ctx context.Context, rs []*nudge.ProviderReport, now time.Time) error {
	r.calls++
	r.reports += len(rs)
	return r.Store.ProviderRecord(ctx, rs, now)
}

// TestProviderStatusOnePerPass: a pass of many messages writes one report
// per provider, in one call, whatever its size, and counts every call.
func TestProviderStatusOnePerPass(t *testing.T) {
	e := newEnv(t)
	st := &recordCounter{Store: e.db}
	w := e.worker(func(c *delivery.Config) {
		c.Store = st
		c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: e.sink(nudge.ChannelSMS), nudge.ChannelEmail: e.smtp()}
	})
	var cs []*nudge.Contact
	for i := range 50 {
		cs = append(cs, e.contact(fmt.Sprintf("c%02d", i), toOK, fmt.Sprintf("c%02d@example.com", i)))
	}
	e.queueMany(cs, nudge.ChannelSMS, "reminder")
	e.queueMany(cs, nudge.ChannelEmail, "welcome")
	e.run(w)
	if st.calls != 1 || st.reports != 2 {
		t.Errorf("a pass of 100 messages wrote %d provider reports in %d calls; want 2 in 1", st.reports, st.calls)
	}
	ps := e.providers()
	for _, k := range []string{"sms/logsink", "email/smtp"} {
		if ps[k] == nil {
			t.Fatalf("provider statuses %v; want %s", ps, k)
		}
		if s, f := ps[k].HourCounts(e.clock.Now()); s != 50 || f != 0 {
			t.Errorf("%s this hour: %d successes, %d errors; want 50 and 0", k, s, f)
		}
	}
}
