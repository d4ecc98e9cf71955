package engine_test

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// BenchmarkDateTrigger measures one hourly date-trigger check
// (Engine.ProcessDates) over NUDGE_BENCH_DATES contacts (default 20000)
// whose renewal dates spread over a year, in five time zones. Each
// iteration moves the clock an hour and checks, entering the contacts due
// in that hour (about n/8760).
func BenchmarkDateTrigger(b *testing.B) {
	n, _ := strconv.Atoi(cmp.Or(os.Getenv("NUDGE_BENCH_DATES"), "20000"))
	zones := []string{"", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"}
	for _, st := range benchStores {
		b.Run(fmt.Sprintf("%s/contacts=%d", st.name, n), func(b *testing.B) {
			e := newEnv(b, st.open(b))
			e.publish("id: renew\ntrigger:\n  date: {field: renewal_date, offset: -7d, at: '10:00'}\nreentry: always\nsteps:\n  - id: hello\n    email: {template: renew}\n")
			first := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			const chunk = 10000
			for i := 0; i < n; i += chunk {
				ps := make([]*nudge.ContactPatch, 0, chunk)
				for k := i; k < min(n, i+chunk); k++ {
					p := &nudge.ContactPatch{ID: fmt.Sprintf("c%07d", k), Email: str("x@example.com"),
						Attributes: map[string]any{"renewal_date": first.AddDate(0, 0, k%365).Format(time.DateOnly), "plan": "pro"}}
					if z := zones[k%len(zones)]; z != "" {
						p.Timezone = str(z)
					}
					ps = append(ps, p)
				}
				if _, err := e.s.ContactMerge(ctx, ps, e.clock.Now()); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := e.eng.ProcessDates(ctx); err != nil { // the first check, which makes any index
				b.Fatal(err)
			}
			entered := 0
			for b.Loop() {
				e.clock.Advance(time.Hour)
				k, err := e.eng.ProcessDates(ctx)
				if err != nil {
					b.Fatal(err)
				}
				entered += k
			}
			b.ReportMetric(float64(entered)/float64(b.N), "entered/check")
		})
	}
}
