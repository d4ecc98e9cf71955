package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// Decision is what Evaluate decided about one send: the outcome, a stable
// reason code, the facts the deciding rule used, and a sentence a marketer
// can read.
type Decision struct {
	// Outcome is nudge.OutcomeSent (allowed: the engine may queue it),
	// nudge.OutcomeDeferred (ask again at Until) or nudge.OutcomeSkipped.
	Outcome  string
	Reason   string
	Until    time.Time // deferred only
	Sentence string
	Used     Used
}

// Used is the facts a decision rests on, for the decision log and explain.
type Used struct {
	Zones                    Zones
	LocalTime                time.Time // now in the primary zone
	Transactional            bool
	Consent                  *nudge.ConsentState // the consent entry the consent rule read
	Suppression              *Suppression
	Engaged                  *Engaged  // the engagement that satisfied the rule
	Window                   *Window   // the quiet-hours window that applied
	Region                   string    // the region whose window applied, if any
	Cap                      *Cap      // the cap that stopped the send
	Counted                  []Sent    // the messages that filled it
	FreesAt                  time.Time // when the cap frees
	Winner                   *Pending  // the higher-priority message that won
	WinnerPriority, Priority int
	Deadline                 time.Time        // the earlier of Expires and Deadline
	Paused                   *nudge.StepPause // the pause that stopped the send
}

// Allowed reports whether the send may go now.
func (d *Decision) Allowed() bool { return d.Outcome == nudge.OutcomeSent }

// Evaluate runs the rules in order — suppression, consent, SMS-allowed
// points, quiet hours (and expiry), frequency caps, priority — and returns
// the first that stops the send, or an allowed decision. It is a pure
// function of f and now.
func (p *Policy) Evaluate(f *Facts, now time.Time) Decision {
	c := f.Contact
	if c == nil {
		c = &nudge.Contact{}
	}
	e := &eval{p: p, f: f, c: c, now: now}
	e.qcv.wins = e.winBuf[:0]
	e.d.Used.Zones = p.Locate(c.Timezone, c.Phone)
	e.d.Used.LocalTime = now.In(e.d.Used.Zones.locs[0])
	e.d.Used.Transactional = f.Transactional()
	e.d.Used.Deadline = earliest(f.Expires, f.Deadline)
	if e.suppression() || e.consent() || e.paused() || e.smsPoints() || e.quietHours() || e.caps() || e.priority() {
		return e.d
	}
	e.d.Outcome, e.d.Reason = nudge.OutcomeSent, ReasonAllowed
	e.d.Sentence = e.what() + " allowed at " + e.at(now) + " (" + e.d.Used.Zones.Describe() + ")."
	return e.d
}

type eval struct {
	p   *Policy
	f   *Facts
	c   *nudge.Contact
	now time.Time
	d   Decision
	qc  *quietCheck

	// qcv and winBuf hold the quiet-hours check without allocating.
	qcv    quietCheck
	winBuf [4]*Window
	rw     Window
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// what names the message: "SMS 'demo-nudge'", "marketing email 'welcome'".
func (e *eval) what() string {
	s := channelName(e.f.Channel)
	if e.f.Template != "" {
		s += " '" + e.f.Template + "'"
	}
	return s
}

func (e *eval) skip(reason, format string, args ...any) bool {
	e.d.Outcome, e.d.Reason = nudge.OutcomeSkipped, reason
	e.d.Sentence = "Skipped: " + fmt.Sprintf(format, args...)
	return true
}

func (e *eval) deferTo(until time.Time, reason, why string) bool {
	e.d.Outcome, e.d.Reason, e.d.Until = nudge.OutcomeDeferred, reason, until
	e.d.Sentence = e.what() + " deferred to " + e.at(until) + " (" + why + "; " + e.d.Used.Zones.Describe() + ")."
	return true
}

// at writes t in the contact's primary zone: "08:00 America/Chicago", with
// the day when it is not today there.
func (e *eval) at(t time.Time) string {
	z := e.d.Used.Zones
	lt := t.In(z.locs[0])
	ny, nm, nd := e.now.In(z.locs[0]).Date()
	y, m, d := lt.Date()
	s := lt.Format("15:04") + " " + z.Names[0]
	switch {
	case y == ny && m == nm && d == nd:
	case time.Date(ny, nm, nd+1, 12, 0, 0, 0, time.UTC).Equal(time.Date(y, m, d, 12, 0, 0, 0, time.UTC)):
		s += " tomorrow"
	default:
		s += lt.Format(" on Mon 2 Jan")
	}
	return s
}

// when writes an earlier time briefly: "14:02" today, "Mon 2 Jan 14:02" else.
func (e *eval) when(t time.Time) string {
	loc := e.d.Used.Zones.locs[0]
	lt := t.In(loc)
	ny, nm, nd := e.now.In(loc).Date()
	if y, m, d := lt.Date(); y == ny && m == nm && d == nd {
		return lt.Format("15:04")
	}
	return lt.Format("Mon 2 Jan 15:04")
}

// 1. Suppression.
func (e *eval) suppression() bool {
	for i := range e.f.Suppressions {
		s := &e.f.Suppressions[i]
		var reason, what string
		switch {
		case s.Channel == "":
			reason, what = ReasonSuppressedContact, "the contact is suppressed"
		case s.Channel != e.f.Channel:
			continue
		case s.Channel == nudge.ChannelSMS:
			reason, what = ReasonSuppressedPhone, "the phone number is suppressed"
		default:
			reason, what = ReasonSuppressedEmail, "the email address is suppressed"
		}
		e.d.Used.Suppression = s
		src := s.Kind
		if s.Source != "" {
			src += " from " + s.Source
		}
		if !s.At.IsZero() {
			src += ", " + s.At.UTC().Format("2006-01-02")
		}
		return e.skip(reason, "%s not sent; %s (%s).", e.what(), what, src)
	}
	return false
}

// 2. Consent. A missing requirement is read as the strictest one.
func (e *eval) consent() bool {
	ch, purpose := e.f.Channel, e.f.consentPurpose()
	if e.f.ConsentErr != nil {
		until := e.now.Add(5 * time.Minute)
		e.d.Outcome, e.d.Reason, e.d.Until = nudge.OutcomeDeferred, ReasonConsentUnavailable, until
		e.d.Sentence = fmt.Sprintf("%s deferred to %s: a lookup the guardrails need failed (%v); nothing is sent without consent, suppressions, caps and pauses known.", e.what(), e.at(until), e.f.ConsentErr)
		return true
	}
	req := e.p.Consent[ch+"/"+purpose]
	if req == "" {
		req = RequireOptedIn
	}
	var st, keyword *nudge.ConsentState
	for _, s := range e.f.Consent {
		if s == nil || s.Channel != ch {
			continue
		}
		if s.Purpose == purpose {
			st = s
		} else if ch == nudge.ChannelSMS && s.Status == nudge.ConsentOptedOut && s.Source == nudge.SourceKeyword {
			keyword = s
		}
	}
	// STOP by keyword stops every text, whatever purpose it was recorded
	// under (CTIA), until the person opts back in for this purpose.
	if keyword != nil && (st == nil || !st.UpdatedAt.After(keyword.UpdatedAt)) {
		st = keyword
	}
	e.d.Used.Consent = st
	if st != nil && st.Status == nudge.ConsentOptedOut {
		return e.skip(ReasonOptedOut, "%s not sent; the contact opted out of %s %s (%s).", e.what(), st.Purpose, channelName(ch), consentSource(st))
	}
	if req == RequireOptedIn && (st == nil || st.Status != nudge.ConsentOptedIn) {
		status := nudge.ConsentUnknown
		if st != nil {
			status = st.Status
		}
		reason := ReasonNoConsentSMS
		if ch != nudge.ChannelSMS {
			reason = ReasonNoConsentEmail
		}
		return e.skip(reason, "%s %s needs opted_in %s consent; the contact's is %s.", purpose, e.what(), channelName(ch), status)
	}
	return false
}

// 2b. A step paused on its opt-out rate sends nothing until an admin
// resumes it. It comes after the contact's own rules, so that a contact
// who opted out still reads as opted out.
func (e *eval) paused() bool {
	ps := e.f.Paused
	if ps == nil || !ps.Active() {
		return false
	}
	e.d.Used.Paused = ps
	return e.skip(ReasonStepPausedOptOutRate, "%s not sent; step %s of journey %s is paused since %s: %d of its %d texts (%.1f%%) were followed by an opt-out within 24 h, over the %.1f%% limit. An admin resumes it.",
		e.what(), ps.StepID, ps.JourneyID, ps.PausedAt.UTC().Format("2006-01-02 15:04 MST"), ps.OptedOut, ps.Sent, 100*ps.Rate, 100*ps.Threshold)
}

func consentSource(st *nudge.ConsentState) string {
	s := st.Source
	if s == "" {
		s = "unknown source"
	}
	if !st.UpdatedAt.IsZero() {
		s += ", " + st.UpdatedAt.UTC().Format("2006-01-02")
	}
	return s
}

// 3. SMS-allowed points.
func (e *eval) smsPoints() bool {
	if e.f.Channel != nudge.ChannelSMS {
		return false
	}
	r := &e.p.SMS
	if e.f.Purpose == "" {
		return e.skip(ReasonSMSNotAllowedPurpose, "%s declares no purpose; SMS is allowed only in steps that declare one.", e.what())
	}
	if !slices.Contains(r.Purposes, e.f.Purpose) {
		allowed := "none"
		if len(r.Purposes) > 0 {
			allowed = strings.Join(r.Purposes, ", ")
		}
		return e.skip(ReasonSMSNotAllowedPurpose, "%s has purpose %q, which the policy does not allow (allowed: %s).", e.what(), e.f.Purpose, allowed)
	}
	if e.f.Transactional() {
		return false
	}
	if st := e.c.LifecycleStage; st != "" && slices.Contains(r.AwarenessStages, st) {
		return e.skip(ReasonAwarenessStage, "no marketing SMS to a contact at lifecycle stage %q (awareness only); %s not sent.", st, e.what())
	}
	if g := r.Engagement; g != nil {
		since := e.now.Add(-g.Within)
		for i := range e.f.Engagement {
			en := &e.f.Engagement[i]
			if en.At.After(since) && !en.At.After(e.now) && slices.Contains(g.Events, en.Event) {
				e.d.Used.Engaged = en
				return false
			}
		}
		return e.skip(ReasonNotEngaged, "%s needs an engagement (%s) within %s before a marketing SMS; none since %s.", e.what(), strings.Join(g.Events, ", "), FormatDuration(g.Within), e.when(since))
	}
	return false
}

// 4. Expiry and quiet hours.
func (e *eval) quietHours() bool {
	dl := e.d.Used.Deadline
	if !dl.IsZero() && !e.now.Before(dl) {
		return e.skip(ReasonExpired, "%s expired at %s; it is never sent late.", e.what(), e.at(dl))
	}
	qc := e.quiet()
	if qc == nil {
		return false
	}
	zi, wi, day, blocked := qc.blocked(e.now)
	if !blocked {
		return false
	}
	w := qc.wins[wi]
	e.d.Used.Window = w
	e.d.Used.Region = qc.region
	next, ok := qc.next(e.now)
	if !ok {
		return e.skip(ReasonQuietHours, "%s has no allowed time in the next 14 days (%s).", e.what(), e.quietWhy(w, zi, day))
	}
	reason := ReasonQuietHours
	if day {
		reason = ReasonQuietDay
	}
	if !dl.IsZero() && !next.Before(dl) {
		return e.skip(ReasonExpired, "%s expires at %s, before it may go at %s (%s).", e.what(), e.at(dl), e.at(next), e.quietWhy(w, zi, day))
	}
	return e.deferTo(e.jitter(qc, next, dl), reason, e.quietWhy(w, zi, day))
}

// quietWhy explains a quiet-hours block: "quiet hours 21:00–08:00", "no SMS
// on Sunday in US-AL".
func (e *eval) quietWhy(w *Window, zi int, day bool) string {
	where := ""
	if e.qc.region != "" && w == e.qc.regionWin {
		where = " in " + e.qc.region
	}
	var s string
	if day {
		lt := e.now.In(e.qc.locs[zi])
		s = fmt.Sprintf("no %s on %s%s", channelName(e.f.Channel), lt.Weekday(), where)
		if !w.Days.Has(lt.Weekday()) {
			s += " (allowed " + w.Days.String() + ")"
		} else {
			s += " (" + lt.Format("2006-01-02") + " is a closed date)"
		}
	} else {
		s = "quiet hours " + clock(w.End) + "–" + clock(w.Start) + where
	}
	if len(e.qc.locs) > 1 {
		s += fmt.Sprintf("; it is %s in %s", e.now.In(e.qc.locs[zi]).Format("15:04"), e.d.Used.Zones.Names[zi])
	}
	return s
}

// quiet returns the quiet-hours check for the send, or nil when none
// applies.
func (e *eval) quiet() *quietCheck {
	if e.qc != nil {
		return e.qc
	}
	q := e.p.Quiet[e.f.Channel]
	if q == nil || e.f.Transactional() && !q.Transactional {
		return nil
	}
	qc := &e.qcv
	qc.locs = e.d.Used.Zones.locs
	if rw, ok := q.Regions[e.d.Used.Zones.Region]; ok && e.d.Used.Zones.Region != "" {
		e.rw = rw
		qc.region, qc.regionWin = e.d.Used.Zones.Region, &e.rw
		qc.wins = append(qc.wins, &e.rw)
	} else {
		qc.wins = append(qc.wins, &q.Allow)
	}
	for i := range q.Tight {
		qc.wins = append(qc.wins, &q.Tight[i])
	}
	e.qc = qc
	return qc
}

// sendTime is the first time at or after t when the send may go, jittered,
// and before the deadline; ok is false when there is none.
func (e *eval) sendTime(t time.Time) (time.Time, bool) {
	dl := e.d.Used.Deadline
	qc := e.quiet()
	if qc != nil {
		var ok bool
		if t, ok = qc.next(t); !ok {
			return t, false
		}
	}
	if !dl.IsZero() && !t.Before(dl) {
		return t, false
	}
	return e.jitter(qc, t, dl), true
}

// jitter spreads t over [t, t+Jitter), staying inside the allowed window
// and before the deadline, by a hash of the contact and the message: the
// same message of the same contact always lands on the same second.
func (e *eval) jitter(qc *quietCheck, t, deadline time.Time) time.Time {
	span := e.p.Jitter
	if qc != nil {
		span = min(span, qc.span(t))
	}
	if !deadline.IsZero() {
		span = min(span, deadline.Sub(t))
	}
	secs := int64(span / time.Second)
	if secs <= 1 {
		return t
	}
	h := fnv(fnv(fnv(fnvOffset, e.c.ID), "\x00"), e.f.MessageKey)
	if e.f.MessageKey == "" {
		h = fnv(fnv(fnv(h, e.f.Journey), "\x00"+e.f.Step), "\x00"+e.f.Template)
	}
	return t.Add(time.Duration(h%uint64(secs)) * time.Second)
}

const fnvOffset = 14695981039346656037

// fnv continues a 64-bit FNV-1a hash over s.
func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// quietCheck holds the windows that apply to one send and the zones they
// apply in.
type quietCheck struct {
	wins      []*Window
	locs      []*time.Location
	region    string
	regionWin *Window
}

// blocked reports whether t is outside a window in some zone: which zone
// and window, and whether the day (not the hour) is what blocks it.
func (qc *quietCheck) blocked(t time.Time) (zi, wi int, day, blocked bool) {
	for zi, loc := range qc.locs {
		lt := t.In(loc)
		mins := lt.Hour()*60 + lt.Minute()
		wd := lt.Weekday()
		for wi, w := range qc.wins {
			if !w.dayOK(lt, wd) {
				return zi, wi, true, true
			}
			if mins < w.Start || mins >= w.End {
				return zi, wi, false, true
			}
		}
	}
	return 0, 0, false, false
}

func (w *Window) dayOK(lt time.Time, wd time.Weekday) bool {
	if !w.Days.Has(wd) {
		return false
	}
	if len(w.Dates) > 0 && slices.Contains(w.Dates, lt.Format("2006-01-02")) {
		return false
	}
	return true
}

// horizon bounds the search for an allowed time.
const horizon = 14 * 24 * time.Hour

// next returns the first minute at or after t allowed in every zone by
// every window.
func (qc *quietCheck) next(t time.Time) (time.Time, bool) {
	start := t
	for range 200 {
		zi, wi, _, blocked := qc.blocked(t)
		if !blocked {
			return t, true
		}
		if t.Sub(start) > horizon {
			break
		}
		loc, w := qc.locs[zi], qc.wins[wi]
		lt := t.In(loc)
		y, m, d := lt.Date()
		mins := lt.Hour()*60 + lt.Minute()
		var cand time.Time
		for k := 0; k <= 16; k++ {
			if k == 0 && mins >= w.Start {
				continue
			}
			noon := time.Date(y, m, d+k, 12, 0, 0, 0, loc)
			if !w.dayOK(noon, noon.Weekday()) {
				continue
			}
			cand = time.Date(y, m, d+k, w.Start/60, w.Start%60, 0, 0, loc)
			break
		}
		if cand.IsZero() {
			break
		}
		if !cand.After(t) {
			// A start in a DST gap can normalize to before t: move on a minute.
			cand = t.Truncate(time.Minute).Add(time.Minute)
		}
		t = cand
	}
	return time.Time{}, false
}

// span is how long the send stays allowed from t (an allowed time).
func (qc *quietCheck) span(t time.Time) time.Duration {
	s := horizon
	for _, loc := range qc.locs {
		lt := t.In(loc)
		y, m, d := lt.Date()
		for _, w := range qc.wins {
			end := time.Date(y, m, d, w.End/60, w.End%60, 0, 0, loc)
			s = min(s, end.Sub(t))
		}
	}
	return max(s, 0)
}
