package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// BenchmarkEventIngest measures EventIngest with calls of 100 track events
// from several concurrent callers, as an ingest API under load makes them:
// new message ids, contacts drawn from 10,000 (mostly existing after the
// first calls). It reports events/s.
func BenchmarkEventIngest(b *testing.B) {
	db := nudgetest.Postgres(b)
	ctx := context.Background()
	const batch = 100
	var seq atomic.Int64
	props := map[string]any{"url": "https://example.com/pricing", "referrer": "newsletter", "plan": "pro"}
	evctx := map[string]any{"ip": "203.0.113.7", "userAgent": "Mozilla/5.0"}
	b.SetParallelism(2) // 2 × GOMAXPROCS callers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		items := make([]nudge.IngestItem, batch)
		for pb.Next() {
			for i := range items {
				n := seq.Add(1)
				items[i] = nudge.IngestItem{Event: &nudge.Event{
					MessageID: fmt.Sprintf("msg-%d", n), Type: nudge.EventTrack,
					ContactID: fmt.Sprintf("contact-%05d", (n*7919)%10000), Name: "page.viewed",
					Properties: props, Context: evctx, Timestamp: now, ReceivedAt: now,
				}}
			}
			if _, err := db.EventIngest(ctx, items, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "events/s")
}
