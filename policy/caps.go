package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// applies reports whether the cap counts for this send.
func (e *eval) applies(c *Cap) bool {
	return c.Channel == e.f.Channel && (c.Region == "" || c.Region == e.d.Used.Zones.Region)
}

// bypass reports whether the send goes past the caps (transactional, where
// the policy says so).
func (e *eval) bypass() bool { return e.f.Transactional() && e.p.Transactional.BypassCaps }

// counts reports whether an earlier message counts toward caps.
func (e *eval) counts(m *Sent) bool {
	return !m.Transactional || !e.p.Transactional.BypassCaps || e.p.Transactional.CountWhenBypassing
}

// window is where the cap's window that holds now begins (start) and where
// the window a pending message must fall in to compete ends (end).
//
// Calendar days are the contact's; where the phone number leaves several
// zones possible, as quiet hours allow only what every zone allows, a cap
// is full when it is full in any of them: the window runs from the
// earliest midnight to the latest.
func (e *eval) window(c *Cap) (start, end time.Time) {
	if c.Days > 0 {
		for i, loc := range e.d.Used.Zones.locs {
			y, m, d := e.now.In(loc).Date()
			s, t := time.Date(y, m, d-(c.Days-1), 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
			if i == 0 || s.Before(start) {
				start = s
			}
			if i == 0 || t.After(end) {
				end = t
			}
		}
		return start, end
	}
	return e.now.Add(-c.Per), e.now.Add(c.Per)
}

// inWindow reports whether a message at t fills the cap's window that
// holds now.
func inWindow(c *Cap, t, start time.Time) bool {
	if c.Days > 0 {
		return !t.Before(start)
	}
	return t.After(start)
}

// count is how many of the contact's messages fill the cap now.
func (e *eval) count(c *Cap) int {
	start, _ := e.window(c)
	n := 0
	for i := range e.f.Recent {
		m := &e.f.Recent[i]
		if m.Channel == c.Channel && inWindow(c, m.At, start) && e.counts(m) && (c.Scope != ScopeJourney || m.Journey == e.f.Journey) {
			n++
		}
	}
	return n
}

// frees is when the cap has room again, given the times of the messages
// that fill it.
func (e *eval) frees(c *Cap, times []time.Time) time.Time {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	t := times[len(times)-c.Limit]
	if c.Days > 0 { // when it has room in every possible zone
		var free time.Time
		for _, loc := range e.d.Used.Zones.locs {
			y, m, d := t.In(loc).Date()
			if f := time.Date(y, m, d+c.Days, 0, 0, 0, 0, loc); f.After(free) {
				free = f
			}
		}
		return free
	}
	return t.Add(c.Per)
}

func (e *eval) onCap() string {
	if e.f.OnCap != "" {
		return e.f.OnCap
	}
	return e.p.OnCap
}

// eachCap calls fn for the policy's caps and the step's that apply.
func (e *eval) eachCap(fn func(c *Cap) bool) bool {
	for i := range e.p.Caps {
		if c := &e.p.Caps[i]; e.applies(c) && fn(c) {
			return true
		}
	}
	for i := range e.f.Caps {
		if c := &e.f.Caps[i]; e.applies(c) && fn(c) {
			return true
		}
	}
	return false
}

// 5. Frequency caps. When several are full, the one that frees last
// decides.
func (e *eval) caps() bool {
	if e.bypass() {
		return false
	}
	var hit *Cap
	var freesAt time.Time
	var counted []Sent
	e.eachCap(func(c *Cap) bool {
		if c.Limit > 0 && e.count(c) < c.Limit {
			return false
		}
		start, _ := e.window(c)
		var ms []Sent
		var times []time.Time
		for _, m := range e.f.Recent {
			if m.Channel == c.Channel && inWindow(c, m.At, start) && e.counts(&m) && (c.Scope != ScopeJourney || m.Journey == e.f.Journey) {
				ms = append(ms, m)
				times = append(times, m.At)
			}
		}
		var fr time.Time
		if c.Limit > 0 {
			fr = e.frees(c, times)
		}
		// A cap that never frees (limit 0) beats any; else the latest.
		if hit == nil || !freesAt.IsZero() && (fr.IsZero() || fr.After(freesAt)) {
			hit, freesAt, counted = c, fr, ms
		}
		return false
	})
	if hit == nil {
		return false
	}
	slices.SortFunc(counted, func(a, b Sent) int { return a.At.Compare(b.At) })
	e.d.Used.Cap, e.d.Used.Counted, e.d.Used.FreesAt = hit, counted, freesAt
	why := fmt.Sprintf("%s reached", hit)
	if len(counted) > 0 {
		why += " by " + e.listSent(counted)
	}
	return e.capped(hit.Reason(), why, freesAt)
}

// capped skips or defers a send stopped by a cap or by priority.
func (e *eval) capped(reason, why string, freesAt time.Time) bool {
	if e.onCap() == OnCapDefer && !freesAt.IsZero() {
		if until, ok := e.sendTime(freesAt); ok {
			e.d.Outcome, e.d.Reason, e.d.Until = nudge.OutcomeDeferred, reason, until
			e.d.Sentence = fmt.Sprintf("%s deferred to %s: %s.", e.what(), e.at(until), why)
			return true
		}
		if dl := e.d.Used.Deadline; !dl.IsZero() {
			return e.skip(reason, "%s; it frees at %s, after %s expires at %s.", why, e.at(freesAt), e.what(), e.at(dl))
		}
	}
	return e.skip(reason, "%s.", why)
}

// listSent writes the messages that filled a cap: "'webinar-reminder'
// sent 14:02 and 'welcome' sent Mon 2 Mar 09:00".
func (e *eval) listSent(ms []Sent) string {
	var parts []string
	for i, m := range ms {
		if i == 3 && len(ms) > 4 {
			parts = append(parts, fmt.Sprintf("%d more", len(ms)-3))
			break
		}
		name := m.Template
		if name == "" {
			name = m.Journey
		}
		verb := "sent"
		if m.InFlight || m.At.After(e.now) {
			verb = "queued for"
		}
		parts = append(parts, fmt.Sprintf("'%s' %s %s", name, verb, e.when(m.At)))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// priorityOf is a journey's priority: the policy's, else the given one.
func (e *eval) priorityOf(journey string, given int) int {
	if p, ok := e.p.Priorities[journey]; ok {
		return p
	}
	return given
}

// beats reports whether a pending message wins over this send: a higher
// priority, or the same priority and an earlier time, or the same time and
// a smaller journey id. The order is total, so two journeys never both win
// and processing order never matters.
func (e *eval) beats(pm *Pending, mine int) bool {
	theirs := e.priorityOf(pm.Journey, pm.Priority)
	switch {
	case theirs != mine:
		return theirs > mine
	case !pm.At.Equal(e.now):
		return pm.At.Before(e.now)
	}
	return pm.Journey < e.f.Journey
}

// 6. Priority: a higher-priority journey's pending message that would
// share a cap window with this one takes the room first.
func (e *eval) priority() bool {
	if e.bypass() || len(e.f.Competing) == 0 {
		return false
	}
	mine := e.priorityOf(e.f.Journey, e.f.Priority)
	return e.eachCap(func(c *Cap) bool {
		if c.Scope == ScopeJourney {
			return false
		}
		start, end := e.window(c)
		n := e.count(c)
		var winner *Pending
		var times []time.Time
		for i := range e.f.Competing {
			pm := &e.f.Competing[i]
			if pm.Channel != c.Channel || pm.Journey == e.f.Journey || !e.beats(pm, mine) {
				continue
			}
			at := pm.At
			if at.Before(e.now) {
				at = e.now
			}
			if !at.Before(end) {
				continue
			}
			n++
			times = append(times, at)
			if winner == nil || e.priorityOf(pm.Journey, pm.Priority) > e.priorityOf(winner.Journey, winner.Priority) {
				winner = pm
			}
		}
		if winner == nil || n+1 <= c.Limit {
			return false
		}
		for _, m := range e.f.Recent {
			if m.Channel == c.Channel && inWindow(c, m.At, start) && e.counts(&m) {
				times = append(times, m.At)
			}
		}
		e.d.Used.Cap, e.d.Used.Winner = c, winner
		e.d.Used.WinnerPriority, e.d.Used.Priority = e.priorityOf(winner.Journey, winner.Priority), mine
		fr := e.frees(c, times)
		e.d.Used.FreesAt = fr
		name := "'" + winner.Journey + "'"
		if winner.Template != "" {
			name += " ('" + winner.Template + "')"
		}
		why := fmt.Sprintf("%s goes to higher-priority journey %s (priority %d over %d)", c, name, e.d.Used.WinnerPriority, mine)
		return e.capped(ReasonPriorityLost, why, fr)
	})
}
