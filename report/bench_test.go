package report_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/report"
)

// BenchmarkReportJourney times one journey report on SQLite over
// NUDGE_BENCH_REPORT_N enrollments (default 2000), seeded through
// EngineCommit: half held out, the other half with an email and an SMS.
func BenchmarkReportJourney(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("NUDGE_BENCH_REPORT_N")); err == nil && v > 0 {
		n = v
	}
	s := nudgetest.SQLite(b)
	contacts := min(n, 100000)
	mustContacts(b, s, contacts)
	mustPlant(b, s, plant{Journey: "bench", N: n, Contacts: contacts, HeldRate: 0.10, TreatedRate: 0.13, OptOut: 0.01, Seed: 1, Batch: 2000})
	b.ResetTimer()
	cpu, ops := nudgetest.CPUTime(), 0
	for b.Loop() {
		if _, err := report.Journey(ctx, s, &nudge.ReportParams{JourneyID: "bench"}, report.Options{}); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(n), "enrollments")
	// CPU time per report: on a shared machine, the work itself.
	b.ReportMetric(float64((nudgetest.CPUTime()-cpu).Milliseconds())/float64(max(ops, 1)), "cpu-ms/op")
	// The opt-out pause's check over the same texts (every SMS step's
	// texts and opt-outs), once: the server runs it every minute.
	b.StopTimer()
	t0 := time.Now()
	if _, err := s.StepOptOutCounts(ctx, time.Time{}, time.Now().Add(24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "optout-check-ms")
}
