package delivery_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/nudgetest"
)

// runNodesFor drives the workers as two servers' loops would, at the same
// time, for d of fake time in steps of step: at each step, each worker
// passes on its own goroutine until it has nothing to do.
func (e *env) runNodesFor(ws []*delivery.Worker, d, step time.Duration) {
	e.t.Helper()
	for end := e.clock.Now().Add(d); e.clock.Now().Before(end); e.clock.Advance(step) {
		var wg sync.WaitGroup
		errs := make([]error, len(ws))
		for i, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n, err := w.RunOnce(e.ctx)
					if err != nil || n == 0 {
						errs[i] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// Two nodes on one PostgreSQL, each with its own Worker, share the slots
// of a sending number's limit (Config.Slots): over a minute together they
// send the number's rate × 60 within 5% (each on its own would send
// twice that), never more than the rate in a second; an unlimited email
// sender's messages, queued behind the texts, all go in the first second.
func TestRateLimitSharedAcrossNodes(t *testing.T) {
	for _, tc := range carrierRates {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rate > 10 && testing.Short() {
				t.Skip("a minute at 100 MPS on PostgreSQL takes over a minute; skipped with -short")
			}
			db := nudgetest.Postgres(t)
			e := newEnvOn(t, db)
			var sms, mail []*logsink.Sender
			var ws []*delivery.Worker
			for range 2 {
				s, m := e.sink(nudge.ChannelSMS), e.sink(nudge.ChannelEmail)
				sms, mail = append(sms, s), append(mail, m)
				ws = append(ws, e.worker(func(c *delivery.Config) {
					c.Senders = map[string]nudge.Sender{nudge.ChannelSMS: s, nudge.ChannelEmail: m}
					c.From = map[string]string{nudge.ChannelSMS: tc.from, nudge.ChannelEmail: "news@mail.example.com"}
					c.Limits = delivery.RateLimits{SenderDefaults: true}
					c.Slots = db
				}))
			}
			backlog := int(tc.rate*60*1.5) + 10
			e.queueMany(e.contacts("s", backlog), nudge.ChannelSMS, "reminder")
			e.clock.Advance(time.Millisecond) // the email is queued after the texts
			const emails = 200
			e.queueMany(e.contacts("m", emails), nudge.ChannelEmail, "welcome")
			start := e.clock.Now()
			e.runNodesFor(ws, 61*time.Second, 100*time.Millisecond)

			var all, mails []logsink.Record
			var perNode []int
			for i := range ws {
				n, _ := perWindow(sms[i].Records(), start, time.Minute)
				perNode = append(perNode, n)
				all, mails = append(all, sms[i].Records()...), append(mails, mail[i].Records()...)
			}
			total, peak := perWindow(all, start, time.Minute)
			t.Logf("%v MPS on two nodes: %d sent in the first minute (%v by node, %.2f%% off), at most %d in a second",
				tc.rate, total, perNode, 100*(float64(total)/(tc.rate*60)-1), peak)
			if want := tc.rate * 60; !within5(total, want) {
				t.Errorf("two nodes sent %d in a minute at %v MPS; want %v ± 5%%", total, tc.rate, want)
			}
			if limit := int(math.Ceil(tc.rate)); peak > limit {
				t.Errorf("%d sent within one second at %v MPS; want at most %d", peak, tc.rate, limit)
			}
			if perNode[0] == 0 || perNode[1] == 0 {
				t.Errorf("texts sent by node: %v; want both nodes sending: the test measures one node", perNode)
			}
			if total >= backlog {
				t.Fatalf("the backlog of %d ran out: the test measures nothing", backlog)
			}
			if first, _ := perWindow(mails, start, time.Second); first != emails {
				t.Errorf("email in the first second: %d of %d; the texts' limit held them back", first, emails)
			}
		})
	}
}

// Three levels (a 1 MPS number, email's provider at 50/s, the workspace at
// 60/s) shared by two nodes on one PostgreSQL: a message deferred at one
// level by one node goes on from there on the other (its hold), and the
// texts' backlog holds no workspace slots that the email needs.
func TestRateLimitSharedLevelsAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of 3,600 emails on PostgreSQL; skipped with -short")
	}
	db := nudgetest.Postgres(t)
	e := newEnvOn(t, db)
	testOneSenderDoesNotBlockAnother(t, e, 2, true)
}
