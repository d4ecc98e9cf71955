package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoakShort is the CI version of `nudge bench soak`: a few seconds of
// steady load on the real server, then a burst that meets the ingest
// limit. The server must answer 429 with Retry-After rather than fail, and
// once the burst is over the queue must drain with nothing lost or sent
// twice. The ten-minute run is a documented command (docs/reliability.md).
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server: not in -short")
	}
	var out bytes.Buffer
	o := &soakOptions{rate: 20, duration: 6 * time.Second, interval: 2 * time.Second, burstX: 10, burstFor: 3 * time.Second, dir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := runSoak(ctx, o, &out)
	t.Log("\n" + out.String())
	if err != nil {
		// What the server logged says why it stopped moving.
		if log, rerr := os.ReadFile(filepath.Join(o.dir, "serve.log")); rerr == nil {
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			t.Logf("the last of serve.log:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
		t.Fatal(err)
	}
	if r.limited == 0 {
		t.Errorf("no 429 during a burst of 10× the rate, with the limit at 5×")
	}
	if r.acked == 0 || r.sinkTotal["email"] == 0 {
		t.Errorf("%d events confirmed, %d emails received: the load did not run", r.acked, r.sinkTotal["email"])
	}
	for _, p := range r.problems() {
		t.Error(p)
	}
}

func TestSoakMemoryGrowth(t *testing.T) {
	for _, c := range []struct {
		name string
		rss  []float64
		want bool
	}{
		{"flat", []float64{60, 40, 42, 41, 43, 42, 41, 44, 42, 43}, false},
		{"noise", []float64{60, 40, 55, 41, 43, 52, 41, 44, 50, 43}, false},
		{"leak", []float64{30, 40, 45, 50, 55, 60, 66, 72, 79, 85}, true},
		{"small growth", []float64{30, 40, 41, 42, 43, 44, 45, 46, 47, 48}, false},
		{"too short", []float64{30, 40, 80, 120}, false},
	} {
		r := &soakResult{rss: c.rss, steady: len(c.rss)}
		if got, first, second := r.memoryGrowth(); got != c.want {
			t.Errorf("%s: growth %t (means %.0f and %.0f MB), want %t", c.name, got, first, second, c.want)
		}
	}
}
