package delivery_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/smtp"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/engine"
)

// newsletter is about 4.4 KB of personalized HTML, as in the issue's
// listmonk comparison.
var newsletter = "Subject: {{ contact.attributes.first_name | default: \"Hello\" }}, this week at Growth Loops\n\n" +
	"Hi {{ contact.attributes.first_name | default: \"there\" }}, here is what happened this week.\n" +
	"--- html ---\n<html><body><h1>Hi {{ contact.attributes.first_name | default: \"there\" }}</h1>\n" +
	strings.Repeat("<p>Growth loops compound: each cohort of users brings the next one. {{ event.properties.title }} shows how, "+
		"with examples from teams like yours, {{ contact.attributes.first_name }}.</p>\n", 24) +
	"<p><a href=\"https://example.com/u/{{ contact.id }}\">Unsubscribe</a></p></body></html>\n"

// benchSeed stores 1,000 contacts, opted in to marketing on the channel,
// and n queued messages of the channel.
func benchSeed(b *testing.B, e *env, n int, channel, tmpl string) {
	b.Helper()
	cs := make([]*nudge.Contact, 1000)
	optIns := make([]*nudge.ConsentRecordParams, len(cs))
	for i := range cs {
		cs[i] = e.contact(fmt.Sprintf("c%05d", i), fmt.Sprintf("+1415556%04d", i), fmt.Sprintf("person%d@example.com", i))
		optIns[i] = &nudge.ConsentRecordParams{ContactID: cs[i].ID, Channel: channel, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedIn, Source: "import"}
	}
	if _, err := e.db.ConsentRecord(e.ctx, optIns, e.clock.Now()); err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		k := min(1000, n-done)
		batch := make([]*nudge.Contact, k)
		for i := range batch {
			batch[i] = cs[(done+i)%len(cs)]
		}
		e.queueMany(batch, channel, tmpl)
		done += k
	}
}

func benchDeliver(b *testing.B, e *env, w *delivery.Worker, channel string) {
	b.Helper()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	total := 0
	for total < b.N {
		n := e.run(w)
		if n == 0 {
			b.Fatalf("nothing left to deliver after %d of %d", total, b.N)
		}
		total += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// The process's CPU, the local servers' included.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	ms, err := e.db.MessageList(e.ctx, &nudge.MessageListParams{Status: nudge.MessageSent, Limit: 10000})
	if err != nil {
		b.Fatal(err)
	}
	if want := min(b.N, 10000); len(ms) != want {
		b.Fatalf("%d messages sent, want %d", len(ms), want)
	}
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// recheck is the engine's dispatch re-check, as the server wires it.
func (e *env) recheck(b *testing.B) func(context.Context, []*nudge.Message, map[string]*nudge.Contact, map[string]*nudge.Enrollment) []string {
	b.Helper()
	eng, err := engine.New(engine.Config{Store: e.db.(engine.Store), Clock: e.clock})
	if err != nil {
		b.Fatal(err)
	}
	return eng.RecheckMany
}

// BenchmarkDeliverySMS delivers queued SMS through the Twilio adapter to a
// local server speaking Twilio's wire format, with the engine's dispatch
// re-check, recording every status.
func BenchmarkDeliverySMS(b *testing.B) {
	e := newEnv(b)
	benchSeed(b, e, b.N, nudge.ChannelSMS, "reminder")
	w := e.worker(func(c *delivery.Config) { c.Batch = 500; c.Recheck = e.recheck(b) })
	benchDeliver(b, e, w, nudge.ChannelSMS)
}

// BenchmarkDeliveryEmail delivers a 4.4 KB personalized HTML email over
// SMTP to a local go-smtp sink, with the engine's dispatch re-check,
// recording every status. With
// NUDGE_BENCH_SMTP=host:port it sends to that server instead (such as
// /work/shared/tools/smtpsink), so that cpu-µs/msg is Nudge's CPU alone,
// without the sink's.
func BenchmarkDeliveryEmail(b *testing.B) {
	templates["newsletter.email.liquid"] = newsletter
	defer delete(templates, "newsletter.email.liquid")
	e := newEnv(b)
	e.mail.keep = false
	host, port := "127.0.0.1", e.mail.port
	if addr := os.Getenv("NUDGE_BENCH_SMTP"); addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err == nil {
			port, err = strconv.Atoi(p)
		}
		if err != nil {
			b.Fatalf("NUDGE_BENCH_SMTP=%q: want host:port (%v)", addr, err)
		}
		host = h
	}
	benchSeed(b, e, b.N, nudge.ChannelEmail, "newsletter")
	s, err := smtp.New(smtp.Config{Host: host, Port: port, TLS: smtp.NoTLS,
		From: "Shop <shop@mail.example.com>", Clock: e.clock, Timeout: 5 * time.Second, PoolSize: delivery.DefaultConcurrency})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	w := e.worker(func(c *delivery.Config) { c.Batch = 500; c.Senders[nudge.ChannelEmail] = s; c.Recheck = e.recheck(b) })
	benchDeliver(b, e, w, nudge.ChannelEmail)
}
