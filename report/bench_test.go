package report_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/report"
)

// BenchmarkReportJourney times one journey report over
// NUDGE_BENCH_REPORT_N enrollments (default 2000) and five times as many
// messages, the proportion, seeded through EngineCommit: half held
// out, the other half with an email and nine texts. On SQLite always, on
// PostgreSQL when NUDGE_TEST_POSTGRES names a server.
func BenchmarkReportJourney(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("NUDGE_BENCH_REPORT_N")); err == nil && v > 0 {
		n = v
	}
	for _, st := range []struct {
		name string
		open func(testing.TB) store
	}{
		{"sqlite", func(tb testing.TB) store { return nudgetest.SQLite(tb) }},
		{"postgres", func(tb testing.TB) store { return nudgetest.Postgres(tb) }},
	} {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			contacts := min(n, 100000)
			mustContacts(b, s, contacts)
			t0, cpu0 := time.Now(), nudgetest.CPUTime()
			mustPlant(b, s, plant{Journey: "bench", N: n, Contacts: contacts, HeldRate: 0.10, TreatedRate: 0.13, OptOut: 0.01, Seed: 1, Batch: 2000, Resends: 8})
			seed, seedCPU := time.Since(t0), nudgetest.CPUTime()-cpu0
			// The test server runs without autovacuum: the statistics it
			// would have gathered after the load.
			if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
				if err := a.Analyze(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu, ops := nudgetest.CPUTime(), 0
			for b.Loop() {
				if _, err := report.Journey(ctx, s, &nudge.ReportParams{JourneyID: "bench"}, report.Options{}); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(n), "enrollments")
			d, err := s.ReportJourney(ctx, &nudge.ReportParams{JourneyID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			var messages int64
			for _, m := range d.Messages {
				messages += m.Count
			}
			b.ReportMetric(float64(messages), "messages")
			// Seeding is the engine's commits, with their report counts.
			b.ReportMetric(seed.Seconds(), "seed-s")
			b.ReportMetric(float64(seedCPU.Microseconds())/float64(n), "seed-cpu-µs/enrollment")
			// CPU time per report: on a shared machine, the work itself
			// (this process's: PostgreSQL's own is not in it).
			b.ReportMetric(float64((nudgetest.CPUTime()-cpu).Milliseconds())/float64(max(ops, 1)), "cpu-ms/op")
			// The opt-out pause's check over the same texts (every SMS step's
			// texts and opt-outs), once: the server runs it every minute.
			b.StopTimer()
			t1 := time.Now()
			if _, err := s.StepOptOutCounts(ctx, time.Time{}, time.Now().Add(24*time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(t1).Milliseconds()), "optout-check-ms")
		})
	}
}
