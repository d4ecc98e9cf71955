package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// ProcessDates enters contacts into journeys with a date trigger whose
// trigger time (the date in the contact's data, plus the offset, at the
// local time of day in the contact's time zone; UTC without one) lies in
// (the previous run, now]. The first run after a start looks back
// Config.DateLookback; a contact who already entered for that trigger time
// is not entered twice, so looking back again is harmless. It returns how
// many contacts it entered.
//
// It scans every contact (ContactList, page by page) on each run that has
// date-triggered journeys: fine for now, to be replaced by an index of
// trigger times in the store.
func (e *Engine) ProcessDates(ctx context.Context) (int, error) {
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	now := e.clock.Now()
	e.mu.Lock()
	from := e.lastDates
	e.mu.Unlock()
	if from.IsZero() {
		from = now.Add(-e.lookback)
	}
	var dated []live
	for _, l := range e.active() {
		if l.j.Trigger.Kind == journey.TriggerDate && l.j.Trigger.Date != nil {
			dated = append(dated, l)
		}
	}
	n := 0
	if len(dated) > 0 && now.After(from) {
		cursor := ""
		for {
			page, err := e.store.ContactList(ctx, &nudge.ContactListParams{Cursor: cursor, Limit: 1000})
			if err != nil {
				return n, fmt.Errorf("engine: list contacts for date triggers: %w", err)
			}
			for _, c := range page.Contacts {
				for _, l := range dated {
					at, ok := dateInstant(c, l.j.Trigger.Date)
					if !ok || !at.After(from) || at.After(now) {
						continue
					}
					entered, err := e.enterDate(ctx, l, c, at)
					if err != nil {
						return n, err
					}
					if entered {
						n++
					}
				}
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
	}
	e.mu.Lock()
	if now.After(e.lastDates) {
		e.lastDates = now
	}
	e.mu.Unlock()
	return n, nil
}

// enterDate enters c into l for the trigger time at, unless it already
// entered for it.
func (e *Engine) enterDate(ctx context.Context, l live, c *nudge.Contact, at time.Time) (bool, error) {
	dt := l.j.Trigger.Date
	for range commitRetries {
		now := e.clock.Now()
		enrs, err := e.contactEnrollments(ctx, c.ID)
		if err != nil {
			return false, fmt.Errorf("engine: list enrollments: %w", err)
		}
		for _, en := range enrs {
			if en.JourneyID == l.j.ID && !en.EnteredAt.Before(at) {
				return false, nil // entered for this trigger time already
			}
		}
		loc, _ := contactLocation(c)
		why := fmt.Sprintf("as %s%s came round (%s)", dt.Field, offsetNote(dt.Offset), formatTime(at, loc))
		g := e.newGuard(ctx, now, map[string]*nudge.Contact{c.ID: c}, map[string][]*nudge.Enrollment{c.ID: enrs})
		tr := Enter(&Entry{Journey: l.j, Version: l.version, Contact: c, Reason: ReasonEnteredDate, Why: why, Existing: enrs}, now, e.opts(g))
		if tr == nil {
			return false, nil
		}
		commit := &nudge.EngineCommit{}
		add(commit, tr)
		g.stamp(commit)
		err = e.store.EngineCommit(ctx, commit, now)
		if nudge.ErrorCode(err) == nudge.ECONFLICT {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("engine: commit date entry: %w", err)
		}
		return tr.Enrollment != nil, nil
	}
	return false, fmt.Errorf("engine: date entry of %s into %s still conflicting after %d attempts", c.ID, l.j.ID, commitRetries)
}

func offsetNote(d time.Duration) string {
	switch {
	case d > 0:
		return " + " + humanDuration(d)
	case d < 0:
		return " - " + humanDuration(-d)
	}
	return ""
}

// dateInstant is the contact's trigger time for a date trigger: the date
// (in the contact's time zone) plus the offset, at the local time of day.
func dateInstant(c *nudge.Contact, dt *journey.DateTrigger) (time.Time, bool) {
	loc, _ := contactLocation(c)
	var (
		y     int
		m     time.Month
		d     int
		found bool
	)
	setFrom := func(t time.Time) {
		if !t.IsZero() {
			y, m, d = t.In(loc).Date()
			found = true
		}
	}
	switch {
	case !dt.Attribute && dt.Field == "created_at":
		setFrom(c.CreatedAt)
	case !dt.Attribute && dt.Field == "updated_at":
		setFrom(c.UpdatedAt)
	default:
		switch v := c.Attributes[dt.Field].(type) {
		case time.Time:
			setFrom(v)
		case string:
			if t, err := time.Parse(time.DateOnly, v); err == nil {
				y, m, d = t.Date()
				found = true
			} else if t, err := time.Parse(time.RFC3339, v); err == nil {
				setFrom(t)
			}
		}
	}
	if !found {
		return time.Time{}, false
	}
	day := 24 * time.Hour
	days := int(dt.Offset / day)
	rest := dt.Offset % day
	return time.Date(y, m, d+days, dt.At.Hour, dt.At.Minute, 0, 0, loc).Add(rest).UTC(), true
}
