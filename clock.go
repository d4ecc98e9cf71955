package nudge

import "time"

// Clock is the only source of time in Nudge's core. The server uses the wall
// clock; tests and the simulator use a fake one that moves only when told.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
