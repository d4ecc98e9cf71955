package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// BenchEngineCommit measures the store's side of a due enrollment's
// transition, as the engine's drain commits it: batches of batch
// transitions, each in one EngineCommit that updates a waiting enrollment
// (its wait over, the journey completed), records two decisions and
// queues one email with its first status. Each iteration commits one
// batch; seeding its waiting enrollments (and the contacts, once) is not
// timed. It reports the process's CPU per transition, steadier than the
// wall clock on a shared machine (the database server's CPU, for
// PostgreSQL, is not in it).
func BenchEngineCommit(b *testing.B, s nudge.Store, batch int) {
	es := benchSeed(b, s)
	at, seq := now, 0
	var cpu benchCPU
	for b.Loop() {
		b.StopTimer()
		entered := at
		at = at.Add(time.Hour)
		seed := &nudge.EngineCommit{}
		for range batch {
			seq++
			seed.Enrollments = append(seed.Enrollments, &nudge.Enrollment{
				ID: fmt.Sprintf("e%09d", seq), JourneyID: "j", Version: 1, ContactID: fmt.Sprintf("c%06d", seq%benchContacts),
				State: nudge.EnrollmentWaiting, StepID: "pause", WakeAt: at,
				Steps: map[string]nudge.StepRecord{"pause": {At: entered}}, EnteredAt: entered,
			})
		}
		mustCommit(b, es, entered, seed)
		c := &nudge.EngineCommit{}
		for _, e := range seed.Enrollments {
			msgID := "m" + e.ID[1:]
			n := clone(e)
			n.State, n.StepID, n.WakeAt, n.EndedAt = nudge.EnrollmentCompleted, "hello", time.Time{}, at
			n.Steps = map[string]nudge.StepRecord{"pause": {At: entered}, "hello": {At: at, MessageID: msgID, Visits: 1}}
			c.Enrollments = append(c.Enrollments, n)
			sent := decision(n, nudge.OutcomeSent, "queued")
			sent.Channel, sent.At = nudge.ChannelEmail, at
			sent.Details = map[string]any{"message_id": msgID, "template": "hello", "zone": "America/New_York"}
			end := decision(n, nudge.OutcomeCompleted, "completed")
			end.At = at
			c.Decisions = append(c.Decisions, sent, end)
			m := message(msgID, n, "hello")
			m.AvailableAt = at
			c.Messages = append(c.Messages, m)
		}
		cpu.time(b, batch, func() { commitBatch(b, es, at, c) })
	}
	cpu.report(b, "transition")
}

// commitBatch is mustCommit under its own name, so that a CPU profile of
// BenchEngineCommit tells the timed commits from the seeding.
func commitBatch(b *testing.B, s engineStore, at time.Time, c *nudge.EngineCommit) {
	b.Helper()
	if err := s.EngineCommit(ctx, c, at); err != nil {
		b.Fatalf("EngineCommit: %v", err)
	}
}

// benchCPU adds up the process's CPU in the timed parts of a benchmark.
type benchCPU struct {
	cpu  time.Duration
	done int
}

// time runs f, timed, as n operations; it leaves the timer running, as
// b.Loop wants it.
func (c *benchCPU) time(b *testing.B, n int, f func()) {
	b.StartTimer()
	cpu0 := nudgetest.CPUTime()
	f()
	c.cpu += nudgetest.CPUTime() - cpu0
	c.done += n
}

// report reports CPU per operation and operations per second.
func (c *benchCPU) report(b *testing.B, unit string) {
	b.ReportMetric(float64(c.cpu.Microseconds())/float64(c.done), "cpu-µs/"+unit)
	b.ReportMetric(float64(c.done)/b.Elapsed().Seconds(), unit+"s/s")
}

// benchContacts is how many contacts benchSeed stores.
const benchContacts = 10000

// benchSeed publishes journey j and stores benchContacts contacts,
// c000000 and on, each with an email address, and marks done the inbox
// items their merges queued.
func benchSeed(b *testing.B, s nudge.Store) engineStore {
	b.Helper()
	es, ok := s.(engineStore)
	if !ok {
		b.Fatalf("%T does not implement nudge.JourneyStore and nudge.EngineStore", s)
	}
	mustPublish(b, es, now, "j", "id: j\n")
	for i := 0; i < benchContacts; i += 1000 {
		ps := make([]*nudge.ContactPatch, 0, 1000)
		for k := i; k < i+1000; k++ {
			email := fmt.Sprintf("c%06d@example.com", k)
			ps = append(ps, &nudge.ContactPatch{ID: fmt.Sprintf("c%06d", k), Email: &email})
		}
		if _, err := s.ContactMerge(ctx, ps, now); err != nil {
			b.Fatal(err)
		}
	}
	for {
		items := mustClaimInbox(b, es, now, 10000)
		if len(items) == 0 {
			break
		}
		mustCommit(b, es, now, &nudge.EngineCommit{InboxDone: inboxSeqs(items)})
	}
	return es
}

// BenchMessageUpdate measures the store's side of delivering a message of
// channel, as the delivery worker writes it: the claim of a pass of 500
// messages, then, per group of group messages, one MessageUpdate that
// marks the group sending and records the previous group's outcomes
// (sent, with a provider id). Each iteration delivers one pass; queueing its messages
// (with their enrollments) is not timed. It reports the process's CPU per
// message (the database server's CPU, for PostgreSQL, is not in it).
func BenchMessageUpdate(b *testing.B, s nudge.Store, channel string, group int) {
	es := benchSeed(b, s)
	ds, ok := s.(nudge.DeliveryStore)
	if !ok {
		b.Fatalf("%T does not implement nudge.DeliveryStore", s)
	}
	const pass = 500
	at, seq := now, 0
	var cpu benchCPU
	for b.Loop() {
		b.StopTimer()
		at = at.Add(time.Minute)
		c := &nudge.EngineCommit{}
		for range pass {
			seq++
			e := &nudge.Enrollment{ID: fmt.Sprintf("e%09d", seq), JourneyID: "j", Version: 1,
				ContactID: fmt.Sprintf("c%06d", seq%benchContacts), State: nudge.EnrollmentCompleted, StepID: "hello",
				EnteredAt: at, EndedAt: at}
			m := message(fmt.Sprintf("m%09d", seq), e, "hello")
			m.Channel, m.AvailableAt, m.CreatedAt = channel, at, at
			c.Enrollments = append(c.Enrollments, e)
			c.Messages = append(c.Messages, m)
		}
		mustCommit(b, es, at, c)
		cpu.time(b, pass, func() { deliverPass(b, ds, at, pass, group) })
	}
	cpu.report(b, "msg")
}

// deliverPass claims n messages and writes their sending marks and
// outcomes in groups, as the delivery worker does.
func deliverPass(b *testing.B, s nudge.DeliveryStore, at time.Time, n, group int) {
	b.Helper()
	ms, err := s.MessageClaim(ctx, at, n, time.Minute)
	if err != nil || len(ms) != n {
		b.Fatalf("MessageClaim: %d messages, %v; want %d", len(ms), err, n)
	}
	var prev []*nudge.MessageUpdate
	for i := 0; i < n || len(prev) > 0; i += group {
		us := prev
		prev = nil
		for _, m := range ms[min(i, n):min(i+group, n)] {
			us = append(us, &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageSending, Attempts: 1,
				Detail: map[string]any{"attempt": 1}})
			prev = append(prev, &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageSent, ProviderID: "p" + m.ID,
				Attempts: 1, Detail: map[string]any{"provider_id": "p" + m.ID}})
		}
		oks, err := s.MessageUpdate(ctx, us, at)
		if err != nil {
			b.Fatalf("MessageUpdate: %v", err)
		}
		for k, ok := range oks {
			if !ok {
				b.Fatalf("MessageUpdate: update %d (%s to %s) not applied", k, us[k].MessageID, us[k].Status)
			}
		}
	}
}
