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
// It reads only the contacts whose date falls on a day that can put their
// trigger time in the window, whatever their time zone
// (nudge.EngineStore.ContactListDates, through an index of the field):
// the days of the window moved back by the offset and the time of day,
// widened by the span of time zones (UTC-12 to UTC+14), an hour for
// daylight saving and a day for timestamps, whose day depends on the zone.
// Of those it computes each trigger time exactly and enters the ones in
// the window.
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
	n := 0
	if now.After(from) {
		for _, l := range e.active() {
			if l.j.Trigger.Kind != journey.TriggerDate || l.j.Trigger.Date == nil {
				continue
			}
			k, err := e.processDate(ctx, l, from, now)
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	e.mu.Lock()
	if now.After(e.lastDates) {
		e.lastDates = now
	}
	e.mu.Unlock()
	return n, nil
}

// processDate enters the contacts whose trigger time of l's date trigger
// lies in (from, now].
func (e *Engine) processDate(ctx context.Context, l live, from, now time.Time) (int, error) {
	dt := l.j.Trigger.Date
	const day = 24 * time.Hour
	shift := dt.Offset + time.Duration(dt.At.Hour)*time.Hour + time.Duration(dt.At.Minute)*time.Minute
	p := &nudge.ContactDateParams{
		Field: dt.Field, Attribute: dt.Attribute,
		From:  from.Add(-shift - 13*time.Hour - day).UTC().Format(time.DateOnly),
		To:    now.Add(-shift + 15*time.Hour + day).UTC().Format(time.DateOnly),
		Limit: 1000,
	}
	n := 0
	for {
		page, err := e.store.ContactListDates(ctx, p)
		if nudge.ErrorCode(err) == nudge.EINVALID && p.Cursor == "" {
			// A field no index can serve: read every contact.
			return e.scanDate(ctx, l, from, now)
		}
		if err != nil {
			return n, fmt.Errorf("engine: list contacts for date trigger of %s: %w", l.j.ID, err)
		}
		var due []string
		for _, d := range page.Dates {
			c := &nudge.Contact{ID: d.ContactID, Timezone: d.Timezone, CreatedAt: d.Time, UpdatedAt: d.Time}
			if dt.Attribute {
				c.Attributes = map[string]any{dt.Field: d.Value}
			}
			if at, ok := dateInstant(c, dt); ok && at.After(from) && !at.After(now) {
				due = append(due, d.ContactID)
			}
		}
		if len(due) > 0 {
			k, err := e.enterDates(ctx, l, due, from, now)
			n += k
			if err != nil {
				return n, err
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		p.Cursor = page.NextCursor
	}
}

// enterDates enters the contacts of ids whose trigger time lies in (from,
// now], all in one commit: their contacts and enrollments read together,
// the guardrails' facts in bulk. If the commit conflicts (another engine
// entered one of them), each is entered on its own.
func (e *Engine) enterDates(ctx context.Context, l live, ids []string, from, now time.Time) (int, error) {
	cs, err := e.contacts(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("engine: read contacts for date trigger of %s: %w", l.j.ID, err)
	}
	enrs := make(map[string][]*nudge.Enrollment, len(ids))
	lists := make([][]*nudge.Enrollment, len(ids))
	if err := parallel(len(ids), func(i int) error {
		var err error
		if cs[ids[i]] != nil {
			lists[i], err = e.contactEnrollments(ctx, ids[i])
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("engine: list enrollments: %w", err)
	}
	for i, id := range ids {
		enrs[id] = lists[i]
	}
	at := e.clock.Now()
	g := e.newGuard(ctx, at, cs, enrs)
	commit := &nudge.EngineCommit{}
	var entered []string
	for _, id := range ids {
		c := cs[id]
		if c == nil {
			continue
		}
		tr := e.dateEntry(l, c, enrs[id], at, g, from, now)
		if tr == nil {
			continue
		}
		add(commit, tr)
		if tr.Enrollment != nil {
			entered = append(entered, id)
		}
	}
	if len(commit.Decisions) == 0 {
		return 0, nil
	}
	g.stamp(commit)
	err = e.store.EngineCommit(ctx, commit, at)
	if err == nil {
		return len(entered), nil
	}
	if nudge.ErrorCode(err) != nudge.ECONFLICT {
		return 0, fmt.Errorf("engine: commit date entries: %w", err)
	}
	n := 0
	for _, id := range ids {
		k, err := e.enterDue(ctx, l, cs[id], from, now)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// dateEntry is the entry of c into l for its trigger time if that lies in
// (from, now] and c did not enter for it yet (enrs are its enrollments),
// or nil.
func (e *Engine) dateEntry(l live, c *nudge.Contact, enrs []*nudge.Enrollment, at time.Time, g *guard, from, now time.Time) *Transition {
	dt := l.j.Trigger.Date
	when, ok := dateInstant(c, dt)
	if !ok || !when.After(from) || when.After(now) {
		return nil
	}
	for _, en := range enrs {
		if en.JourneyID == l.j.ID && !en.EnteredAt.Before(when) {
			return nil // entered for this trigger time already
		}
	}
	loc, _ := contactLocation(c)
	why := fmt.Sprintf("as %s%s came round (%s)", dt.Field, offsetNote(dt.Offset), formatTime(when, loc))
	g.setEnrollments(c.ID, enrs)
	return Enter(&Entry{Journey: l.j, Version: l.version, Contact: c, Reason: ReasonEnteredDate, Why: why, Existing: enrs}, at, e.opts(g))
}

// scanDate is processDate reading every contact, for a field the store
// cannot index.
func (e *Engine) scanDate(ctx context.Context, l live, from, now time.Time) (int, error) {
	n, cursor := 0, ""
	for {
		page, err := e.store.ContactList(ctx, &nudge.ContactListParams{Cursor: cursor, Limit: 1000})
		if err != nil {
			return n, fmt.Errorf("engine: list contacts for date triggers: %w", err)
		}
		for _, c := range page.Contacts {
			k, err := e.enterDue(ctx, l, c, from, now)
			n += k
			if err != nil {
				return n, err
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		cursor = page.NextCursor
	}
}

// enterDue enters c (nil: erased meanwhile) if its trigger time lies in
// (from, now]; it returns 1 if it did.
func (e *Engine) enterDue(ctx context.Context, l live, c *nudge.Contact, from, now time.Time) (int, error) {
	if c == nil {
		return 0, nil
	}
	at, ok := dateInstant(c, l.j.Trigger.Date)
	if !ok || !at.After(from) || at.After(now) {
		return 0, nil
	}
	entered, err := e.enterDate(ctx, l, c, at)
	if entered {
		return 1, err
	}
	return 0, err
}

// enterDate enters c into l for the trigger time at, unless it already
// entered for it, in a commit of its own.
func (e *Engine) enterDate(ctx context.Context, l live, c *nudge.Contact, at time.Time) (bool, error) {
	for range commitRetries {
		now := e.clock.Now()
		enrs, err := e.contactEnrollments(ctx, c.ID)
		if err != nil {
			return false, fmt.Errorf("engine: list enrollments: %w", err)
		}
		g := e.newGuard(ctx, now, map[string]*nudge.Contact{c.ID: c}, map[string][]*nudge.Enrollment{c.ID: enrs})
		tr := e.dateEntry(l, c, enrs, now, g, at.Add(-time.Nanosecond), at)
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
