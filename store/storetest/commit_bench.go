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
	es, ok := s.(engineStore)
	if !ok {
		b.Fatalf("%T does not implement nudge.JourneyStore and nudge.EngineStore", s)
	}
	at := now
	mustPublish(b, es, at, "j", "id: j\n")
	const contacts = 10000
	for i := 0; i < contacts; i += 1000 {
		ps := make([]*nudge.ContactPatch, 0, 1000)
		for k := i; k < i+1000; k++ {
			email := fmt.Sprintf("c%06d@example.com", k)
			ps = append(ps, &nudge.ContactPatch{ID: fmt.Sprintf("c%06d", k), Email: &email})
		}
		if _, err := s.ContactMerge(ctx, ps, at); err != nil {
			b.Fatal(err)
		}
	}
	for {
		items := mustClaimInbox(b, es, at, 10000)
		if len(items) == 0 {
			break
		}
		mustCommit(b, es, at, &nudge.EngineCommit{InboxDone: inboxSeqs(items)})
	}
	var (
		seq  int
		cpu  time.Duration
		done int
	)
	for b.Loop() {
		b.StopTimer()
		entered := at
		at = at.Add(time.Hour)
		seed := &nudge.EngineCommit{}
		for range batch {
			seq++
			seed.Enrollments = append(seed.Enrollments, &nudge.Enrollment{
				ID: fmt.Sprintf("e%09d", seq), JourneyID: "j", Version: 1, ContactID: fmt.Sprintf("c%06d", seq%contacts),
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
		b.StartTimer()
		cpu0 := nudgetest.CPUTime()
		commitBatch(b, es, at, c)
		cpu += nudgetest.CPUTime() - cpu0
		done += batch
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(done), "cpu-µs/transition")
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "transitions/s")
}

// commitBatch is mustCommit under its own name, so that a CPU profile of
// BenchEngineCommit tells the timed commits from the seeding.
func commitBatch(b *testing.B, s engineStore, at time.Time, c *nudge.EngineCommit) {
	b.Helper()
	if err := s.EngineCommit(ctx, c, at); err != nil {
		b.Fatalf("EngineCommit: %v", err)
	}
}
