package sim

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// dateStops are the times at which a date trigger can fire: its local
// time of day (plus the offset's part of a day) on each day, in each time
// zone the contacts have. The engine checks date triggers only when it
// runs, so the replay stops at each of these times, and an entry is
// recorded at its exact time. Without date-triggered journeys there are none.
type dateStops struct {
	times []time.Time // sorted, unique
}

func newDateStops(ctx context.Context, s nudge.Store, js []*journey.Journey, events []*Event, from, to time.Time) (*dateStops, error) {
	var dated []*journey.DateTrigger
	for _, j := range js {
		if j.Trigger.Kind == journey.TriggerDate && j.Trigger.Date != nil {
			dated = append(dated, j.Trigger.Date)
		}
	}
	d := &dateStops{}
	if len(dated) == 0 {
		return d, nil
	}
	zones := map[string]bool{"UTC": true}
	cursor := ""
	for {
		page, err := s.ContactList(ctx, &nudge.ContactListParams{Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("sim: list contacts: %w", err)
		}
		for _, c := range page.Contacts {
			if c.Timezone != "" {
				zones[c.Timezone] = true
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	for _, e := range events {
		if p := e.Item.Patch; p != nil && p.Timezone != nil && *p.Timezone != "" {
			zones[*p.Timezone] = true
		}
	}
	const day = 24 * time.Hour
	for name := range zones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			continue // the engine uses UTC for it, which is in the set
		}
		for _, dt := range dated {
			rest := dt.Offset % day
			start := from.Add(-2 * day).In(loc)
			for t := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, loc); !t.After(to.Add(2 * day)); t = t.AddDate(0, 0, 1) {
				at := time.Date(t.Year(), t.Month(), t.Day(), dt.At.Hour, dt.At.Minute, 0, 0, loc).Add(rest).UTC()
				if at.After(from) && !at.After(to) {
					d.times = append(d.times, at)
				}
			}
		}
	}
	sort.Slice(d.times, func(i, j int) bool { return d.times[i].Before(d.times[j]) })
	d.times = slices.CompactFunc(d.times, func(a, b time.Time) bool { return a.Equal(b) })
	return d, nil
}

// at reports whether now is a stop.
func (d *dateStops) at(now time.Time) bool {
	return len(d.times) > 0 && d.times[0].Equal(now)
}

// next is the first stop after now, zero if none.
func (d *dateStops) next(now time.Time) time.Time {
	for len(d.times) > 0 && !d.times[0].After(now) {
		d.times = d.times[1:]
	}
	if len(d.times) == 0 {
		return time.Time{}
	}
	return d.times[0]
}
