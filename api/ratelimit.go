package api

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// codeRateLimited is the error code of a 429: the node's ingest limit
// (Config.IngestRate) is reached; retry after Retry-After seconds.
const codeRateLimited = "rate_limited"

// limiter is a token bucket on the node's ingest requests: rate requests a
// second on average, up to burst at once. Time comes from the server's
// clock. A nil limiter lets everything through.
type limiter struct {
	clock nudge.Clock
	rate  float64
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter, or nil for rate 0 (no limit). burst
// defaults to one second's worth.
func newLimiter(clock nudge.Clock, rate float64, burst int) (*limiter, error) {
	if rate < 0 || burst < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("api: IngestRate and IngestBurst must be finite and not negative")
	}
	if rate == 0 {
		return nil, nil
	}
	b := float64(burst)
	if b == 0 {
		b = math.Max(1, math.Ceil(rate))
	}
	return &limiter{clock: clock, rate: rate, burst: b, tokens: b}, nil
}

// take takes one token, or says how long until one is there.
func (l *limiter) take() (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if !l.last.IsZero() {
		l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
}

// limitIngest answers 429 with Retry-After when the ingest limit is
// reached, before the request's body is read: a flood costs no parsing and
// no database work, and nothing of a refused request is stored.
func (s *Server) limitIngest(h http.HandlerFunc) http.HandlerFunc {
	if s.ingestLimit == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.ingestLimit.take()
		if ok {
			h(w, r)
			return
		}
		s.logger.DebugContext(r.Context(), "ingest rate limited", slog.String("route", r.Pattern))
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		writeJSON(w, http.StatusTooManyRequests, errorResponse{Error: errorBody{Code: codeRateLimited,
			Message: fmt.Sprintf("this node takes at most %g ingest requests a second; retry after Retry-After seconds", s.ingestLimit.rate)}})
	}
}
