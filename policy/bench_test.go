package policy

import (
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// BenchmarkEvaluate decides about marketing SMS for 1,000 contacts with a
// few recent messages each (cap lookups included), as the engine's batch
// would, in memory. Most are allowed; a share is capped or deferred by
// quiet hours.
func BenchmarkEvaluate(b *testing.B) {
	p := Default()
	phones := []string{"+13125550100", "+12085550100", "+13055550100", "+14015550100", "+33612345678"}
	fs := make([]*Facts, 1000)
	for i := range fs {
		f := facts()
		f.Contact = &nudge.Contact{ID: "c" + strconv.Itoa(i), Phone: phones[i%len(phones)], LifecycleStage: nudge.StageLead}
		if i%3 == 0 {
			f.Contact.Timezone = "America/Chicago"
		}
		f.MessageKey = "e" + strconv.Itoa(i) + ":nudge"
		f.Consent = append(f.Consent, &nudge.ConsentState{Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedIn})
		for j := range i % 5 {
			f.Recent = append(f.Recent, Sent{At: now.Add(-time.Duration(30+j*40) * time.Hour), Channel: nudge.Channels[j%2], Journey: "other", Template: "t"})
		}
		if i%7 == 0 {
			f.Recent = append(f.Recent, Sent{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS, Journey: "other", Template: "t"})
		}
		fs[i] = f
	}
	// Warm the zone caches as a running server has them.
	for _, f := range fs {
		p.Evaluate(f, now)
	}
	b.ReportAllocs()
	cpu0 := nudgetest.CPUTime()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		d := p.Evaluate(fs[i%len(fs)], now.Add(time.Duration(i%600)*time.Minute))
		if d.Reason == "" {
			b.Fatal("no reason")
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	if cpu := nudgetest.CPUTime() - cpu0; cpu > 0 {
		// Per core: the decisions one core's CPU second makes, GC included.
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "decisions/cpu-s")
	}
}
