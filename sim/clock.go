package sim

import (
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// Clock is a virtual nudge.Clock: it stands still until Set moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ nudge.Clock = (*Clock)(nil)

// NewClock returns a clock stopped at t (in UTC).
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t; it never moves it back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t.UTC()
	}
}
