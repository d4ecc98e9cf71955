package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// formatTime writes t as people read it in a decision: "Mon 2 Mar 15:00 UTC".
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST")
}

// humanDuration writes d as "3 days 5 hours" (to the minute).
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "no time"
	}
	var parts []string
	unit := func(n int64, one string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, one))
		}
	}
	day := 24 * time.Hour
	unit(int64(d/day), "day")
	unit(int64(d%day/time.Hour), "hour")
	unit(int64(d%time.Hour/time.Minute), "minute")
	if len(parts) == 0 {
		return d.String()
	}
	return strings.Join(parts, " ")
}

// contactLocation is the contact's time zone; with none (or an unknown
// name), UTC, and a note for the decision saying so.
func contactLocation(c *nudge.Contact) (*time.Location, string) {
	if c == nil || c.Timezone == "" {
		return time.UTC, " (the contact has no time zone: UTC)"
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC, fmt.Sprintf(" (unknown time zone %q: UTC)", c.Timezone)
	}
	return loc, ""
}

// nextLocal is the first time strictly after now that is at the local time
// of day in loc, on one of days (any day if empty).
func nextLocal(now time.Time, loc *time.Location, at journey.TimeOfDay, days []time.Weekday) time.Time {
	l := now.In(loc)
	for i := range 9 {
		t := time.Date(l.Year(), l.Month(), l.Day()+i, at.Hour, at.Minute, 0, 0, loc)
		if !t.After(now) {
			continue
		}
		if len(days) == 0 {
			return t.UTC()
		}
		for _, d := range days {
			if t.Weekday() == d {
				return t.UTC()
			}
		}
	}
	return now.Add(7 * 24 * time.Hour) // unreachable with valid weekdays
}
