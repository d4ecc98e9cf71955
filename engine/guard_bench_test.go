package engine_test

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
)

// dueSMSJourney waits, then texts.
const dueSMSJourney = "id: due-sms\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: text\n    sms: {template: t, purpose: reminder}\n"

// BenchmarkDueSMS measures the guardrails on the engine's due path: N due
// SMS sends (NUDGE_BENCH_DUESMS, default 100000) of N contacts in Chicago,
// opted in, each evaluated by policy.Evaluate with its facts (consent,
// suppressions, recent messages, the contact's other enrollments) read in
// bulk per claimed batch, and committed with its decision and message.
// It reports decisions/s over the whole drain (claims, reads, evaluation,
// commits). Each iteration moves the clock a day on and seeds N new due
// enrollments (untimed); from the fourth, the 3-per-7-days cap skips them.
//
// BenchmarkDueSMSEvaluate (in package engine) measures the same sends
// without the commits: claims, bulk facts and evaluation only.
func BenchmarkDueSMS(b *testing.B) {
	n, _ := strconv.Atoi(cmp.Or(os.Getenv("NUDGE_BENCH_DUESMS"), "100000"))
	for _, st := range benchStores {
		b.Run(fmt.Sprintf("%s/sends=%d", st.name, n), func(b *testing.B) {
			e := newEnv(b, st.open(b))
			if bs, _ := strconv.Atoi(os.Getenv("NUDGE_BENCH_BATCH")); bs > 0 {
				eng, err := engine.New(engine.Config{Store: e.s, Clock: e.clock, NewID: e.ids, Batch: bs})
				if err != nil {
					b.Fatal(err)
				}
				e.eng = eng
			}
			if _, _, err := e.s.PolicyPublish(ctx, []byte("timezone: America/Chicago\n"), "", e.clock.Now()); err != nil {
				b.Fatal(err)
			}
			e.publish(dueSMSJourney)
			seedSMSContacts(b, e.s, n, e.clock.Now())
			// 18:00 UTC is noon in Chicago: inside the SMS window.
			e.clock.Set(time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC))
			var decided int
			var elapsed, cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				seedEnrollmentsAt(b, e, "due-sms", n, e.clock.Now().Add(time.Hour))
				e.clock.Advance(2 * time.Hour)
				runtime.GC()
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				k, _ := drain(b, e.eng)
				elapsed += time.Since(start)
				cpu += cpuTime() - cpu0
				if k != n {
					b.Fatalf("drained %d, want %d", k, n)
				}
				decided += k
				e.clock.Advance(22 * time.Hour)
			}
			b.ReportMetric(float64(decided)/elapsed.Seconds(), "decisions/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(decided), "cpu-µs/decision")
		})
	}
}

// seedSMSContacts creates contacts c0000000… with a Chicago number and
// zone, opted in to marketing SMS, and empties the inbox.
func seedSMSContacts(b testing.TB, s engine.Store, n int, now time.Time) {
	b.Helper()
	const chunk = 10000
	for i := 0; i < n; i += chunk {
		ps := make([]*nudge.ContactPatch, 0, chunk)
		cs := make([]*nudge.ConsentRecordParams, 0, chunk)
		for k := i; k < min(n, i+chunk); k++ {
			id := fmt.Sprintf("c%07d", k)
			ps = append(ps, &nudge.ContactPatch{ID: id, Phone: str(fmt.Sprintf("+1312%07d", k)), Timezone: str("America/Chicago")})
			cs = append(cs, &nudge.ConsentRecordParams{ContactID: id, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedIn, Source: nudge.SourceImport})
		}
		if _, err := s.ContactMerge(ctx, ps, now); err != nil {
			b.Fatal(err)
		}
		rs, err := s.ConsentRecord(ctx, cs, now)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	seedContacts(b, s, 0, now) // drains the inbox
}

// seedEnrollmentsAt commits enrollments of contacts 0..n-1 in journey id,
// waiting at its step "pause" until wake.
func seedEnrollmentsAt(b testing.TB, e *env, journeyID string, n int, wake time.Time) {
	b.Helper()
	const chunk = 10000
	now := e.clock.Now()
	for i := 0; i < n; i += chunk {
		c := &nudge.EngineCommit{}
		for k := i; k < min(n, i+chunk); k++ {
			c.Enrollments = append(c.Enrollments, &nudge.Enrollment{
				ID: e.ids(), JourneyID: journeyID, Version: 1, ContactID: fmt.Sprintf("c%07d", k),
				State: nudge.EnrollmentWaiting, StepID: "pause", WakeAt: wake,
				Steps:     map[string]nudge.StepRecord{"pause": {At: now}},
				EnteredAt: now, UpdatedAt: now,
			})
		}
		if err := e.s.EngineCommit(ctx, c, now); err != nil {
			b.Fatal(err)
		}
	}
}
