package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

// TestIngestRateLimit: past the configured rate, ingest answers 429 with
// Retry-After and stores nothing of the refused request; other routes are
// not limited; once the bucket refills, ingest works again.
func TestIngestRateLimit(t *testing.T) {
	e := newEnvWith(t, nudgetest.SQLite(t), func(c *api.Config) { c.IngestRate, c.IngestBurst = 2, 2 })
	track := func(n int) *response {
		return e.do("POST", "/v1/track", e.ingest, fmt.Sprintf(`{"userId":"u-1","event":"page.viewed","messageId":"m-%d"}`, n))
	}
	e.must(track(1), 200)
	e.must(track(2), 200)
	r := e.must(track(3), 429)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1 (one request every half second)", got)
	}
	if got := r.errField("code"); got != "rate_limited" {
		t.Errorf("error code %q, want rate_limited", got)
	}
	// Reading is not ingest: it goes on.
	if got := len(e.mustEvents("u-1", "")); got != 2 {
		t.Errorf("%d events stored, want 2: the refused one must not be", got)
	}
	e.clock.Advance(500 * time.Millisecond)
	e.must(track(3), 200)
	e.must(track(4), 429)
	if got := len(e.mustEvents("u-1", "")); got != 3 {
		t.Errorf("%d events stored, want 3", got)
	}
}

func TestIngestRateLimitConfig(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		burst int
	}{{-1, 0}, {1, -1}} {
		_, err := api.New(api.Config{Store: nudgetest.SQLite(t), IngestRate: c.rate, IngestBurst: c.burst})
		if err == nil {
			t.Errorf("rate %g, burst %d: no error", c.rate, c.burst)
		}
	}
}
