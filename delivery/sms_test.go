package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/policy"
)

// smsWorker delivers SMS to a log sink under the policy written in src.
func (e *env) smsWorker(src string) (*delivery.Worker, *logsink.Sender) {
	e.t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		e.t.Fatal(err)
	}
	sms := e.sink(nudge.ChannelSMS)
	w := e.worker(func(c *delivery.Config) {
		c.Senders[nudge.ChannelSMS] = sms
		c.Policy = func(context.Context) (*policy.Policy, error) { return p, nil }
	})
	return w, sms
}

// texts returns what the sink got for a number, oldest first.
func texts(s *logsink.Sender, to string) []string {
	var out []string
	for _, o := range s.Sent() {
		if o.To == to {
			out = append(out, o.Text)
		}
	}
	return out
}

const notice = "Reply STOP to opt out"

func TestOptOutNoticeOnFirstText(t *testing.T) {
	e := newEnv(t)
	w, sms := e.smsWorker("") // the default: the notice on the first text
	ada, bo := e.contact("ada", "+14155550101", ""), e.contact("bo", "+14155550102", "")

	e.purpose = policy.PurposeTransactional
	e.queue(ada, nudge.ChannelSMS, "promo") // a transactional text: no notice, and it does not count
	e.run(w)
	e.purpose = ""
	first := e.queue(ada, nudge.ChannelSMS, "promo")
	e.queue(bo, nudge.ChannelSMS, "reminder") // carries the notice in its template already
	e.run(w)
	e.clock.Advance(time.Hour)
	e.queue(ada, nudge.ChannelSMS, "promo")
	e.run(w)

	got := texts(sms, "+14155550101")
	want := []string{
		"Growth Loops 101: seats are going fast, Ada.",
		"Growth Loops 101: seats are going fast, Ada. " + notice,
		"Growth Loops 101: seats are going fast, Ada.",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Ada's texts:\n%q\nwant\n%q", got, want)
	}
	if got := texts(sms, "+14155550102"); len(got) != 1 || strings.Count(got[0], "Reply STOP") != 1 {
		t.Errorf("Bo's text %q; want the template's own notice, once", got)
	}
	// The notice is counted: the sending mark records the segments sent.
	h := e.history(first)
	if len(h) < 2 || h[1].Status != nudge.MessageSending || h[1].Detail["segments"] != float64(1) {
		t.Errorf("history of the first text %+v; want sending with 1 segment", h)
	}
}

func TestOptOutNoticeEveryTextAndNever(t *testing.T) {
	for when, wantNotices := range map[string]int{"every": 2, "never": 0} {
		t.Run(when, func(t *testing.T) {
			e := newEnv(t)
			w, sms := e.smsWorker("opt_out_notice: {text: \"Text STOP to end\", when: " + when + "}\n")
			ada := e.contact("ada", "+14155550101", "")
			e.queue(ada, nudge.ChannelSMS, "promo")
			e.run(w)
			e.queue(ada, nudge.ChannelSMS, "promo")
			e.run(w)
			got := texts(sms, "+14155550101")
			n := 0
			for _, s := range got {
				if strings.HasSuffix(s, ". Text STOP to end") {
					n++
				}
			}
			if len(got) != 2 || n != wantNotices {
				t.Errorf("texts %q; want 2, %d with the notice", got, wantNotices)
			}
		})
	}
}

// A notice that takes a text past its segment limit fails it like any
// other lint error, before anything is sent.
func TestOptOutNoticeCountsInTheLint(t *testing.T) {
	e := newEnv(t)
	sms := e.sink(nudge.ChannelSMS)
	w := e.worker(func(c *delivery.Config) {
		c.Senders[nudge.ChannelSMS] = sms
		c.SMSLimits.MaxSegments = 1
		p := policy.Default()
		c.Policy = func(context.Context) (*policy.Policy, error) { return p, nil }
	})
	id := e.queue(e.contact("ada", "+14155550101", ""), nudge.ChannelSMS, "full") // 150 characters
	e.run(w)
	if m := e.message(id); m.Status != nudge.MessageFailed || !strings.Contains(m.Error, "2 segments") {
		t.Errorf("message %s %q; want failed: 2 segments with the notice", m.Status, m.Error)
	}
	if n := len(sms.Sent()); n != 0 {
		t.Errorf("%d sent; want none", n)
	}
}

func TestSMSBudget(t *testing.T) {
	e := newEnv(t)
	src := "sms_budgets:\n  webinar: 3\nopt_out_notice: {when: never}\n"
	w, sms := e.smsWorker(src)
	ids := e.queueMany(e.contacts("c", 5), nudge.ChannelSMS, "promo") // one segment each
	e.run(w)

	if n := len(sms.Sent()); n != 3 {
		t.Errorf("%d texts sent; want the budget's 3", n)
	}
	cancelled := 0
	for _, id := range ids {
		// The batch's texts are prepared in parallel: any 3 of the 5 go.
		if e.message(id).Status != nudge.MessageCancelled {
			continue
		}
		cancelled++
		h := e.wantHistory(id, nudge.MessageQueued, nudge.MessageCancelled)
		d := last(h).Detail
		if d["reason"] != policy.ReasonSMSBudgetSpent || d["used"] != float64(3) || d["budget"] != float64(3) {
			t.Errorf("%s cancelled with %v; want sms_budget_spent, 3 of 3 used", id, d)
		}
		if m := e.message(id); !strings.Contains(m.Error, "journey webinar has used 3 of its 3 SMS segments today (America/New_York)") {
			t.Errorf("%s error %q; want the sentence", id, m.Error)
		}
	}
	if cancelled != 2 {
		t.Errorf("%d texts cancelled; want the 2 past the budget", cancelled)
	}

	// A restarted worker reads what was spent from the store.
	w2, sms2 := e.smsWorker(src)
	late := e.queue(e.contact("late", "+14155550199", ""), nudge.ChannelSMS, "promo")
	e.run(w2)
	if m := e.message(late); m.Status != nudge.MessageCancelled || len(sms2.Sent()) != 0 {
		t.Errorf("after a restart: %s, %d sent; want cancelled, none", m.Status, len(sms2.Sent()))
	}

	// Email of the journey is not held, and the next day the texts go.
	e.queue(e.contact("mail", "", "mail@example.com"), nudge.ChannelEmail, "welcome")
	e.run(w2)
	e.clock.Advance(24 * time.Hour)
	next := e.queue(e.contact("next", "+14155550198", ""), nudge.ChannelSMS, "promo")
	e.run(w2)
	if m := e.message(next); m.Status != nudge.MessageSent {
		t.Errorf("the next day's text: %s; want sent", m.Status)
	}
	if got := len(e.mail.messages()); got != 1 {
		t.Errorf("%d emails; want 1: the budget is for texts", got)
	}
}
