package sim_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/sim"
)

var benchContacts = flag.Int("sim.contacts", 100_000, "contacts in BenchmarkSimulate")
var benchGrain = flag.Duration("sim.grain", time.Minute, "event times in BenchmarkSimulate are multiples of this")
var benchShm = flag.Bool("sim.shm", false, "keep the benchmark's store in /dev/shm")
var benchOut = flag.String("sim.out", "", "write BenchmarkSimulate's whole report, every decision, as JSON to this file (to compare runs)")

// BenchmarkSimulate simulates 30 days of three journeys (webinar reminder,
// stalled prospect, onboarding) over -sim.contacts contacts (100,000 by
// default): about a third register for one of ten webinars, a fifth look at
// pricing, a tenth become customers, with clicks, attendance, demos and
// setup along the way. Event times are random minutes (seeded), so the
// replay stops tens of thousands of times.
//
//	go test ./sim -run '^$' -bench Simulate -benchtime 1x
func BenchmarkSimulate(b *testing.B) {
	n := *benchContacts
	csv, timeline := benchInput(n)
	var js []*journey.Journey
	for _, name := range []string{"webinar", "stalled-prospect", "onboarding"} {
		f := filepath.Join("..", "examples", name, "journey.yaml")
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		j, err := journey.Parse(f, src, journey.Options{})
		if err != nil {
			b.Fatal(err)
		}
		js = append(js, j)
	}
	norm := &ingest.ContactNormalizer{DefaultRegion: "US"}
	events, err := sim.ReadTimeline("bench.jsonl", bytes.NewReader(timeline), norm)
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for b.Loop() {
		steps := 0
		r, err := sim.Run(context.Background(), sim.Config{
			Progress:   func(time.Time) { steps++ },
			TotalsOnly: *benchOut == "",
			Journeys:   js, Contacts: bytes.NewReader(csv), Events: events, Normalizer: norm,
			From: from, To: from.Add(30 * 24 * time.Hour), Dir: benchDir(b),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Totals.Decisions), "decisions")
		b.ReportMetric(float64(r.Events), "events")
		b.ReportMetric(float64(steps), "stops")
		b.ReportMetric(float64(r.Totals.Messages["sms"]+r.Totals.Messages["email"]), "messages")
		if *benchOut != "" {
			var out bytes.Buffer
			if err := r.WriteJSON(&out); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(*benchOut, out.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchInput makes a contacts CSV and a timeline for n contacts over March 2026.
func benchInput(n int) (csv, timeline []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Paris"}
	stages := []string{"lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity"}
	var c bytes.Buffer
	c.WriteString("id,email,phone,timezone,lifecycle_stage,is_customer,first_name,sms_ok,sms_reminders\n")
	for i := range n {
		yes := func(p float64) string {
			if rng.Float64() < p {
				return "yes"
			}
			return "no"
		}
		fmt.Fprintf(&c, "b-%06d,u%06d@example.com,+1415%07d,%s,%s,false,U%d,%s,%s\n",
			i, i, 5550000+i%10000, zones[i%len(zones)], stages[rng.IntN(len(stages))], i, yes(0.6), yes(0.5))
	}

	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	minute := func(lo, hi time.Duration) time.Time { // a random minute in [start+lo, start+hi)
		span := int64((hi - lo) / time.Minute)
		return start.Add(lo + time.Duration(rng.Int64N(span))*time.Minute)
	}
	type line struct {
		at   time.Time
		json string
	}
	var lines []line
	add := func(at time.Time, format string, args ...any) {
		lines = append(lines, line{at, fmt.Sprintf(format, args...)})
	}
	ts := func(t time.Time) string { return t.Truncate(*benchGrain).Format(time.RFC3339) }
	day := 24 * time.Hour
	for i := range n {
		id := fmt.Sprintf("b-%06d", i)
		switch r := rng.Float64(); {
		case r < 0.35: // a webinar
			w := rng.IntN(10)
			starts := start.Add(time.Duration(3+w*2)*day + 17*time.Hour)
			reg := minute(0, time.Duration(3+w*2)*day)
			add(reg, `{"type":"track","userId":%q,"event":"webinar.registered","timestamp":%q,"properties":{"webinar_id":"w-%d","starts_at":%q}}`, id, ts(reg), w, ts(starts))
			if rng.Float64() < 0.4 {
				at := starts.Add(time.Duration(rng.IntN(20)) * time.Minute)
				add(at, `{"type":"track","userId":%q,"event":"webinar.attended","timestamp":%q,"properties":{"webinar_id":"w-%d"}}`, id, ts(at), w)
			}
		case r < 0.55: // pricing
			first := minute(0, 25*day)
			second := first.Add(time.Duration(1+rng.IntN(6*24*60)) * time.Minute)
			add(first, `{"type":"identify","userId":%q,"timestamp":%q,"traits":{"pricing_views_7d":1}}`, id, ts(first))
			add(first, `{"type":"page","userId":%q,"timestamp":%q,"properties":{"path":"/pricing"}}`, id, ts(first))
			add(second, `{"type":"identify","userId":%q,"timestamp":%q,"traits":{"pricing_views_7d":2}}`, id, ts(second))
			add(second, `{"type":"page","userId":%q,"timestamp":%q,"properties":{"path":"/pricing"}}`, id, ts(second))
			switch x := rng.Float64(); {
			case x < 0.25:
				at := second.Add(time.Duration(1+rng.IntN(36*60)) * time.Minute)
				add(at, `{"type":"track","userId":%q,"event":"email.clicked","timestamp":%q,"properties":{"template":"pricing-follow-up"}}`, id, ts(at))
			case x < 0.4:
				at := second.Add(time.Duration(1+rng.IntN(4*24*60)) * time.Minute)
				add(at, `{"type":"track","userId":%q,"event":"demo.booked","timestamp":%q}`, id, ts(at))
			}
		case r < 0.65: // a new customer
			at := minute(0, 25*day)
			add(at, `{"type":"identify","userId":%q,"timestamp":%q,"traits":{"lifecycle_stage":"customer","is_customer":true}}`, id, ts(at))
			if rng.Float64() < 0.5 {
				done := at.Add(time.Duration(1+rng.IntN(5*24*60)) * time.Minute)
				add(done, `{"type":"identify","userId":%q,"timestamp":%q,"traits":{"setup_complete":true}}`, id, ts(done))
			}
		}
	}
	var t strings.Builder
	for _, l := range lines {
		t.WriteString(l.json)
		t.WriteByte('\n')
	}
	return c.Bytes(), []byte(t.String())
}

// benchDir is a temporary directory for the store: in /dev/shm when the
// machine has it (-sim.shm), so that the disk does not time the benchmark.
func benchDir(b *testing.B) string {
	if *benchShm {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			d, err := os.MkdirTemp("/dev/shm", "nudge-sim-bench-")
			if err == nil {
				b.Cleanup(func() { os.RemoveAll(d) })
				return d
			}
		}
	}
	return b.TempDir()
}
