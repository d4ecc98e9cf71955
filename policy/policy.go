package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// Consent requirements: what a channel and purpose need before a send.
const (
	RequireOptedIn     = "opted_in"      // an opted_in entry
	RequireNotOptedOut = "not_opted_out" // anything but opted_out (unknown passes)
)

// What a step does when a cap (or a higher-priority journey) stops it.
const (
	OnCapSkip  = "skip"
	OnCapDefer = "defer"
)

// Cap scopes.
const (
	ScopeAll     = ""        // every journey's messages count
	ScopeJourney = "journey" // only the same journey's messages count
)

// Policy is the workspace's guardrails: every send a journey wants passes
// Evaluate. Parse reads one from a policy file, Default gives the shipped one,
// and Tighten narrows it for a journey or a step. A Policy is immutable once
// built and safe for concurrent use.
type Policy struct {
	// Version is the stored version, recorded with every decision (set by
	// whoever stores policies; 0 for the default).
	Version int64
	// Timezone is the workspace default IANA zone, used when neither the
	// contact nor its phone number gives one.
	Timezone string
	// Consent maps "channel/purpose" (purpose: nudge.PurposeMarketing or
	// nudge.PurposeTransactional) to RequireOptedIn or RequireNotOptedOut.
	Consent map[string]string
	SMS     SMSRules
	// Quiet holds the quiet hours per channel; a channel without an entry
	// may send at any hour.
	Quiet map[string]*Quiet
	// Jitter spreads deferred sends over [0, Jitter) after the time they may
	// go, by a hash of contact and message, so 10,000 texts do not leave at
	// 08:00:00.
	Jitter time.Duration
	// Caps are combined: a send must fit every one that applies.
	Caps          []Cap
	Transactional Transactional
	// OnCap is what a step that does not say does when capped: OnCapSkip
	// or OnCapDefer.
	OnCap string
	// Priorities gives journeys' priorities by journey id (higher wins);
	// a journey not listed has the priority in its Facts (default 0).
	Priorities map[string]int
	Keywords   KeywordConfig
	// OptOutPause pauses an SMS step whose texts are too often followed by
	// an opt-out (see OptOutPause).
	OptOutPause OptOutPause
	// OptOutNotice is what marketing SMS carry so the recipient knows how
	// to stop them; the delivery worker adds it at dispatch.
	OptOutNotice OptOutNotice
	// SMSBudgets caps, by journey id, the SMS segments a journey may send
	// per day (a day in Timezone); past it the journey's texts are stopped
	// at dispatch (sms_budget_spent) until the next day. No entry: no cap.
	SMSBudgets map[string]int
}

// When marketing SMS carry the opt-out notice.
const (
	NoticeFirst = "first" // on the first text to a contact
	NoticeEvery = "every" // on every marketing text
	NoticeNever = "never" // never: the templates carry it themselves
)

// OptOutNotice is the notice marketing SMS carry: Text on the first text
// to a contact, on every text, or never, as When says. A text that
// already contains Text (in any case) is left as it is.
type OptOutNotice struct {
	Text string
	When string
}

// OptOutPause is when an SMS step is paused automatically: when more than
// Rate of its texts (MinSends at least) queued within Over, and since it
// was last resumed, were followed within 24 hours by an SMS opt-out (STOP)
// of the same contact. Off turns it off.
type OptOutPause struct {
	Off      bool
	Rate     float64       // default 0.02
	MinSends int64         // default 200
	Over     time.Duration // default 30 days
}

// Crossed reports whether opted out of sent crosses the threshold.
func (o OptOutPause) Crossed(sent, optedOut int64) bool {
	return !o.Off && sent > 0 && sent >= o.MinSends && float64(optedOut) > o.Rate*float64(sent)
}

// SMSRules are the SMS-allowed points.
type SMSRules struct {
	// Purposes a step may declare for an SMS; empty allows none.
	Purposes []string
	// AwarenessStages are lifecycle stages that get no marketing SMS.
	AwarenessStages []string
	// Engagement, when set, requires a recent engagement before a
	// marketing SMS.
	Engagement *Engagement
}

// Engagement requires one of Events (event names such as email.opened)
// within Within before a marketing SMS.
type Engagement struct {
	Within time.Duration
	Events []string
}

// Quiet is a channel's quiet hours: a send may go only when Allow holds in
// every candidate zone of the contact, or the region's window where the
// contact's number places it in a region with its own rule, and every
// window in Tight (added by journeys and steps) holds too.
type Quiet struct {
	Allow Window
	// Regions maps a region ("US-FL", "FR") to the window that replaces
	// Allow there.
	Regions map[string]Window
	// Tight windows hold everywhere, regions included.
	Tight []Window
	// Transactional: quiet hours apply to transactional messages too.
	Transactional bool
}

// Window is the local time of day [Start, End) in minutes after midnight
// on the weekdays in Days when a message may go.
type Window struct {
	Start, End int
	Days       Weekdays
	// Dates are local dates (2026-07-04) when nothing may go: holidays.
	Dates []string
}

// Weekdays is a set of weekdays, bit i for time.Weekday(i).
type Weekdays uint8

// AllDays holds every weekday.
const AllDays Weekdays = 1<<7 - 1

// Has reports whether d is in the set.
func (w Weekdays) Has(d time.Weekday) bool { return w&(1<<d) != 0 }

func (w Weekdays) String() string {
	if w == AllDays {
		return "every day"
	}
	var names []string
	for d := time.Sunday; d <= time.Saturday; d++ {
		if w.Has(d) {
			names = append(names, weekdayNames[d])
		}
	}
	return strings.Join(names, ", ")
}

func days(ds ...time.Weekday) Weekdays {
	var w Weekdays
	for _, d := range ds {
		w |= 1 << d
	}
	return w
}

// Cap is one frequency cap: at most Limit messages on Channel per rolling
// Per, or per Days calendar days in the contact's zone (today and the
// Days-1 before).
type Cap struct {
	Channel string
	Limit   int
	Per     time.Duration // rolling window; 0 when Days is set
	Days    int           // calendar days; 0 when Per is set
	Scope   string        // ScopeAll or ScopeJourney
	// Region, when set, applies the cap only to contacts whose number
	// places them there (Florida's 3 per 24 h).
	Region string

	line, col int
	origin    string // "" workspace, else "journey"/"step" (Tighten)
}

// Reason is the cap's reason code: cap_sms_24h, cap_sms_cal1d,
// cap_journey_email_7d.
func (c Cap) Reason() string {
	var b strings.Builder
	b.WriteString("cap_")
	if c.Scope == ScopeJourney {
		b.WriteString("journey_")
	}
	b.WriteString(c.Channel)
	b.WriteByte('_')
	if c.Days > 0 {
		fmt.Fprintf(&b, "cal%dd", c.Days)
	} else {
		b.WriteString(FormatDuration(c.Per))
	}
	return b.String()
}

// String is the cap as a marketer reads it: "SMS cap 1 per 24 h",
// "journey email cap 2 per calendar day".
func (c Cap) String() string {
	var b strings.Builder
	if c.Region != "" {
		b.WriteString(c.Region + " ")
	}
	if c.Scope == ScopeJourney {
		b.WriteString("journey ")
	}
	fmt.Fprintf(&b, "%s cap %d per %s", channelName(c.Channel), c.Limit, c.window())
	return b.String()
}

func (c Cap) window() string {
	switch {
	case c.Days == 1:
		return "calendar day"
	case c.Days > 1:
		return fmt.Sprintf("%d calendar days", c.Days)
	case c.Per%(24*time.Hour) == 0 && c.Per >= 48*time.Hour:
		return fmt.Sprintf("%d days", c.Per/(24*time.Hour))
	case c.Per%time.Hour == 0:
		return fmt.Sprintf("%d h", c.Per/time.Hour)
	}
	return FormatDuration(c.Per)
}

// Transactional says how caps treat transactional messages.
type Transactional struct {
	// BypassCaps lets transactional messages go whatever the caps.
	BypassCaps bool
	// CountWhenBypassing makes bypassing messages count toward caps
	// anyway; by default they do not.
	CountWhenBypassing bool
}

func channelName(ch string) string {
	switch ch {
	case nudge.ChannelSMS:
		return "SMS"
	case nudge.ChannelEmail:
		return "email"
	}
	return ch
}

var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ShippedRegions are the regional SMS windows shipped as defaults, from
// state rules on calls and texts as compliance vendors summarize them
// (REFERENCE.md; not legal advice). State holidays are not listed: add them
// as dates.
func ShippedRegions() map[string]Window {
	weekdays := days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)
	noSunday := AllDays &^ days(time.Sunday)
	return map[string]Window{
		"US-FL": {Start: 8 * 60, End: 20 * 60, Days: AllDays},
		"US-OK": {Start: 8 * 60, End: 20 * 60, Days: AllDays},
		"US-MD": {Start: 8 * 60, End: 20 * 60, Days: AllDays},
		"US-AL": {Start: 8 * 60, End: 20 * 60, Days: noSunday},
		"US-LA": {Start: 8 * 60, End: 20 * 60, Days: noSunday},
		"US-MS": {Start: 8 * 60, End: 21 * 60, Days: noSunday},
		"US-MA": {Start: 8 * 60, End: 20 * 60, Days: AllDays},
		"US-KY": {Start: 10 * 60, End: 21 * 60, Days: AllDays},
		"US-MI": {Start: 9 * 60, End: 21 * 60, Days: AllDays},
		"US-MN": {Start: 9 * 60, End: 21 * 60, Days: AllDays},
		"US-NM": {Start: 9 * 60, End: 21 * 60, Days: AllDays},
		"US-NV": {Start: 9 * 60, End: 20 * 60, Days: AllDays},
		"US-RI": {Start: 9 * 60, End: 18 * 60, Days: weekdays},
		"FR":    {Start: 8 * 60, End: 22 * 60, Days: noSunday},
	}
}

// DefaultSMSPurposes are the SMS purposes the default policy allows: every
// purpose a journey can declare.
var DefaultSMSPurposes = []string{"reminder", "decision_point", "time_sensitive", "onboarding", "transactional"}

// Default returns the shipped policy: strict where the law is.
//   - consent: marketing SMS needs opted_in; marketing email and all
//     transactional messages need not opted_out;
//   - SMS: every declared purpose; no marketing SMS to subscribers; no
//     engagement requirement;
//   - quiet hours: SMS 08:00–21:00 local (TCPA) with the shipped regional
//     rules, transactional texts included; email any time; jitter 15 min;
//   - caps: SMS 1 per 24 h and 3 per 7 days, email 2 per 24 h; Florida,
//     Oklahoma and Maryland 3 SMS per 24 h; transactional messages are
//     capped like the others; a capped step skips.
func Default() *Policy {
	return &Policy{
		Timezone: "America/New_York",
		Consent: map[string]string{
			"sms/marketing":       RequireOptedIn,
			"sms/transactional":   RequireNotOptedOut,
			"email/marketing":     RequireNotOptedOut,
			"email/transactional": RequireNotOptedOut,
		},
		SMS: SMSRules{
			Purposes:        slices.Clone(DefaultSMSPurposes),
			AwarenessStages: []string{nudge.StageSubscriber},
		},
		Quiet: map[string]*Quiet{
			nudge.ChannelSMS: {
				Allow:         Window{Start: 8 * 60, End: 21 * 60, Days: AllDays},
				Regions:       ShippedRegions(),
				Transactional: true,
			},
		},
		Jitter: 15 * time.Minute,
		Caps: []Cap{
			{Channel: nudge.ChannelSMS, Limit: 1, Per: 24 * time.Hour},
			{Channel: nudge.ChannelSMS, Limit: 3, Per: 7 * 24 * time.Hour},
			{Channel: nudge.ChannelEmail, Limit: 2, Per: 24 * time.Hour},
			{Channel: nudge.ChannelSMS, Limit: 3, Per: 24 * time.Hour, Region: "US-FL"},
			{Channel: nudge.ChannelSMS, Limit: 3, Per: 24 * time.Hour, Region: "US-OK"},
			{Channel: nudge.ChannelSMS, Limit: 3, Per: 24 * time.Hour, Region: "US-MD"},
		},
		OnCap:        OnCapSkip,
		Priorities:   map[string]int{},
		Keywords:     DefaultKeywords(),
		OptOutPause:  OptOutPause{Rate: 0.02, MinSends: 200, Over: 30 * 24 * time.Hour},
		OptOutNotice: OptOutNotice{Text: DefaultOptOutNotice, When: NoticeFirst},
		SMSBudgets:   map[string]int{},
	}
}

// DefaultOptOutNotice is the shipped opt-out notice.
const DefaultOptOutNotice = "Reply STOP to opt out"

// clone returns a copy of p that shares nothing mutable with it.
func (p *Policy) clone() *Policy {
	c := *p
	c.Consent = maps.Clone(p.Consent)
	c.SMSBudgets = maps.Clone(p.SMSBudgets)
	c.SMS.Purposes = slices.Clone(p.SMS.Purposes)
	c.SMS.AwarenessStages = slices.Clone(p.SMS.AwarenessStages)
	if p.SMS.Engagement != nil {
		e := *p.SMS.Engagement
		e.Events = slices.Clone(e.Events)
		c.SMS.Engagement = &e
	}
	c.Quiet = make(map[string]*Quiet, len(p.Quiet))
	for ch, q := range p.Quiet {
		qq := *q
		qq.Regions = maps.Clone(q.Regions)
		qq.Tight = slices.Clone(q.Tight)
		c.Quiet[ch] = &qq
	}
	c.Caps = slices.Clone(p.Caps)
	c.Priorities = maps.Clone(p.Priorities)
	return &c
}

// FormatDuration writes d the way policy files do: 24h, 7d, 90m, 1d12h.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	if w := d / (24 * time.Hour); w > 0 && d%(24*time.Hour) == 0 && d != 24*time.Hour {
		fmt.Fprintf(&b, "%dd", w)
		return b.String()
	}
	if d >= 48*time.Hour {
		fmt.Fprintf(&b, "%dd", d/(24*time.Hour))
		d %= 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d %= time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d %= time.Minute
	}
	if d > 0 {
		fmt.Fprintf(&b, "%ds", d/time.Second)
	}
	return b.String()
}

// clock writes minutes after midnight as 15:04.
func clock(min int) string {
	h, m := min/60, min%60
	return string([]byte{byte('0' + h/10), byte('0' + h%10), ':', byte('0' + m/10), byte('0' + m%10)})
}

// String writes the window as "08:00–21:00" with its days when not every day.
func (w Window) String() string {
	s := clock(w.Start) + "–" + clock(w.End)
	if w.Days != AllDays {
		s += " " + w.Days.String()
	}
	return s
}
