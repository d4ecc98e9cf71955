package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var (
	chicago = func() *time.Location { l, _ := time.LoadLocation("America/Chicago"); return l }()
	// A Tuesday afternoon in Chicago.
	now = time.Date(2026, 3, 3, 14, 0, 0, 0, chicago)
)

func optedIn(ch string) *nudge.ConsentState {
	return &nudge.ConsentState{Channel: ch, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedIn, Source: nudge.SourceForm, EntryID: 7}
}

// facts is a marketing SMS that every rule allows at now.
func facts() *Facts {
	return &Facts{
		Channel:  nudge.ChannelSMS,
		Purpose:  "reminder",
		Journey:  "demo",
		Step:     "nudge",
		Template: "demo-nudge",
		Contact:  &nudge.Contact{ID: "c1", Phone: "+13125550100", Email: "jane@example.com", LifecycleStage: nudge.StageLead},
		Consent:  []*nudge.ConsentState{optedIn(nudge.ChannelSMS)},
	}
}

func noJitter() *Policy {
	p := Default()
	p.Jitter = 0
	return p
}

func TestEvaluate(t *testing.T) {
	type tc struct {
		name    string
		policy  func(p *Policy)
		facts   func(f *Facts)
		now     time.Time
		outcome string
		reason  string
		until   time.Time // zero: not checked
		// sentence, when set, must be the decision's sentence.
		sentence string
	}
	tomorrow := func(h, m int) time.Time { return time.Date(2026, 3, 4, h, m, 0, 0, chicago) }
	sent := func(h, m int, journey, template string) Sent {
		return Sent{At: time.Date(2026, 3, 3, h, m, 0, 0, chicago), Channel: nudge.ChannelSMS, Journey: journey, Template: template}
	}
	cases := []tc{
		{name: "allowed", outcome: nudge.OutcomeSent, reason: ReasonAllowed,
			sentence: "SMS 'demo-nudge' allowed at 14:00 America/Chicago (zone from phone +1 312)."},

		// 1. Suppression.
		{name: "suppressed phone", facts: func(f *Facts) {
			f.Suppressions = []Suppression{{Channel: nudge.ChannelSMS, Address: f.Contact.Phone, Kind: SuppressProviderOptOut, Source: "twilio"}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonSuppressedPhone},
		{name: "email suppression does not stop SMS", facts: func(f *Facts) {
			f.Suppressions = []Suppression{{Channel: nudge.ChannelEmail, Kind: SuppressHardBounce}}
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "suppressed email", facts: func(f *Facts) {
			f.Channel, f.Purpose = nudge.ChannelEmail, ""
			f.Suppressions = []Suppression{{Channel: nudge.ChannelEmail, Kind: SuppressComplaint}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonSuppressedEmail},
		{name: "erased contact", facts: func(f *Facts) {
			f.Suppressions = []Suppression{{Kind: SuppressErased}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonSuppressedContact},
		{name: "suppression before consent", facts: func(f *Facts) {
			f.Consent = nil
			f.Suppressions = []Suppression{{Channel: nudge.ChannelSMS, Kind: SuppressDoNotContact}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonSuppressedPhone},

		// 2. Consent.
		{name: "no SMS consent", facts: func(f *Facts) { f.Consent = nil },
			outcome: nudge.OutcomeSkipped, reason: ReasonNoConsentSMS,
			sentence: "Skipped: marketing SMS 'demo-nudge' needs opted_in SMS consent; the contact's is unknown."},
		{name: "SMS consent unknown", facts: func(f *Facts) { f.Consent[0].Status = nudge.ConsentUnknown },
			outcome: nudge.OutcomeSkipped, reason: ReasonNoConsentSMS},
		{name: "email consent does not count for SMS", facts: func(f *Facts) { f.Consent = []*nudge.ConsentState{optedIn(nudge.ChannelEmail)} },
			outcome: nudge.OutcomeSkipped, reason: ReasonNoConsentSMS},
		{name: "opted out", facts: func(f *Facts) {
			f.Consent[0].Status, f.Consent[0].Source = nudge.ConsentOptedOut, nudge.SourceKeyword
		}, outcome: nudge.OutcomeSkipped, reason: ReasonOptedOut},
		{name: "consent lookup failed", facts: func(f *Facts) { f.ConsentErr = errors.New("database is locked") },
			outcome: nudge.OutcomeDeferred, reason: ReasonConsentUnavailable, until: now.Add(5 * time.Minute)},
		{name: "marketing email with unknown consent", facts: func(f *Facts) {
			f.Channel, f.Purpose, f.Consent = nudge.ChannelEmail, "", nil
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "marketing email opted out", facts: func(f *Facts) {
			f.Channel, f.Purpose = nudge.ChannelEmail, ""
			f.Consent = []*nudge.ConsentState{{Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonOptedOut},
		{name: "marketing email configured to need opted_in", policy: func(p *Policy) { p.Consent["email/marketing"] = RequireOptedIn },
			facts:   func(f *Facts) { f.Channel, f.Purpose = nudge.ChannelEmail, "" },
			outcome: nudge.OutcomeSkipped, reason: ReasonNoConsentEmail},
		{name: "transactional SMS with unknown consent", facts: func(f *Facts) { f.Purpose, f.Consent = "transactional", nil },
			outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "transactional SMS after STOP", facts: func(f *Facts) {
			f.Purpose = "transactional"
			f.Consent[0].Status, f.Consent[0].Source = nudge.ConsentOptedOut, nudge.SourceKeyword
		}, outcome: nudge.OutcomeSkipped, reason: ReasonOptedOut},

		// 3. SMS-allowed points.
		{name: "purpose not allowed", policy: func(p *Policy) { p.SMS.Purposes = []string{"reminder"} },
			facts: func(f *Facts) { f.Purpose = "onboarding" }, outcome: nudge.OutcomeSkipped, reason: ReasonSMSNotAllowedPurpose},
		{name: "no purpose", facts: func(f *Facts) { f.Purpose = "" }, outcome: nudge.OutcomeSkipped, reason: ReasonSMSNotAllowedPurpose},
		{name: "awareness stage", facts: func(f *Facts) { f.Contact.LifecycleStage = nudge.StageSubscriber },
			outcome: nudge.OutcomeSkipped, reason: ReasonAwarenessStage},
		{name: "awareness stage, transactional", facts: func(f *Facts) { f.Contact.LifecycleStage, f.Purpose = nudge.StageSubscriber, "transactional" },
			outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "not engaged", policy: func(p *Policy) {
			p.SMS.Engagement = &Engagement{Within: 7 * 24 * time.Hour, Events: []string{"email.opened", "email.clicked", "page.viewed"}}
		}, facts: func(f *Facts) {
			f.Engagement = []Engaged{{Event: "email.clicked", At: now.Add(-8 * 24 * time.Hour)}, {Event: "email.sent", At: now.Add(-time.Hour)}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonNotEngaged},
		{name: "engaged", policy: func(p *Policy) {
			p.SMS.Engagement = &Engagement{Within: 7 * 24 * time.Hour, Events: []string{"email.opened", "email.clicked", "page.viewed"}}
		}, facts: func(f *Facts) {
			f.Engagement = []Engaged{{Event: "page.viewed", At: now.Add(-6 * 24 * time.Hour)}}
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},

		// 4. Quiet hours and expiry.
		{name: "quiet hours", now: time.Date(2026, 3, 3, 21, 30, 0, 0, chicago),
			outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: tomorrow(8, 0),
			sentence: "SMS 'demo-nudge' deferred to 08:00 America/Chicago tomorrow (quiet hours 21:00–08:00; zone from phone +1 312)."},
		{name: "quiet hours end at 21:00 sharp", now: time.Date(2026, 3, 3, 21, 0, 0, 0, chicago),
			outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: tomorrow(8, 0)},
		{name: "last allowed minute", now: time.Date(2026, 3, 3, 20, 59, 59, 0, chicago), outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "early morning", now: time.Date(2026, 3, 3, 7, 59, 0, 0, chicago),
			outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: time.Date(2026, 3, 3, 8, 0, 0, 0, chicago),
			sentence: "SMS 'demo-nudge' deferred to 08:00 America/Chicago (quiet hours 21:00–08:00; zone from phone +1 312)."},
		{name: "email has no quiet hours", now: time.Date(2026, 3, 3, 23, 0, 0, 0, chicago),
			facts: func(f *Facts) { f.Channel, f.Purpose = nudge.ChannelEmail, "" }, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "transactional SMS keeps quiet hours by default", now: time.Date(2026, 3, 3, 23, 0, 0, 0, chicago),
			facts: func(f *Facts) { f.Purpose = "transactional" }, outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours},
		{name: "transactional SMS when configured", now: time.Date(2026, 3, 3, 23, 0, 0, 0, chicago),
			policy: func(p *Policy) { p.Quiet[nudge.ChannelSMS].Transactional = false },
			facts:  func(f *Facts) { f.Purpose = "transactional" }, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "expires before quiet hours end", now: time.Date(2026, 3, 3, 22, 0, 0, 0, chicago),
			facts:   func(f *Facts) { f.Expires = tomorrow(7, 0) },
			outcome: nudge.OutcomeSkipped, reason: ReasonExpired},
		{name: "deadline passed", facts: func(f *Facts) { f.Deadline = now.Add(-time.Minute) },
			outcome: nudge.OutcomeSkipped, reason: ReasonExpired,
			sentence: "Skipped: SMS 'demo-nudge' expired at 13:59 America/Chicago; it is never sent late."},
		{name: "deadline at the send", facts: func(f *Facts) { f.Deadline = now }, outcome: nudge.OutcomeSkipped, reason: ReasonExpired},
		{name: "deadline after quiet hours", now: time.Date(2026, 3, 3, 22, 0, 0, 0, chicago),
			facts:   func(f *Facts) { f.Deadline = tomorrow(9, 0) },
			outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: tomorrow(8, 0)},
		{name: "journey quiet hours", policy: func(p *Policy) {
			p.Quiet[nudge.ChannelSMS].Tight = []Window{{Start: 9 * 60, End: 12 * 60, Days: AllDays}}
		}, outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: tomorrow(9, 0)},
		{name: "closed date", policy: func(p *Policy) {
			p.Quiet[nudge.ChannelSMS].Allow.Dates = []string{"2026-03-03"}
		}, outcome: nudge.OutcomeDeferred, reason: ReasonQuietDay, until: tomorrow(8, 0)},

		// 5. Caps.
		{name: "cap 1 per 24 h", now: time.Date(2026, 3, 3, 18, 0, 0, 0, chicago),
			facts:   func(f *Facts) { f.Recent = []Sent{sent(14, 2, "webinar", "webinar-reminder")} },
			outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h,
			sentence: "Skipped: SMS cap 1 per 24 h reached by 'webinar-reminder' sent 14:02."},
		{name: "cap counts in-flight messages", facts: func(f *Facts) {
			s := sent(16, 0, "webinar", "webinar-reminder")
			s.InFlight = true
			f.Recent = []Sent{s}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h},
		{name: "cap frees after 24 h", facts: func(f *Facts) {
			f.Recent = []Sent{{At: now.Add(-24 * time.Hour), Channel: nudge.ChannelSMS, Journey: "x"}}
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "email does not fill the SMS cap", facts: func(f *Facts) {
			f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelEmail, Journey: "x"}}
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "cap defers to when it frees", now: time.Date(2026, 3, 3, 18, 0, 0, 0, chicago),
			facts: func(f *Facts) {
				f.OnCap = OnCapDefer
				f.Recent = []Sent{sent(14, 2, "webinar", "webinar-reminder")}
			}, outcome: nudge.OutcomeDeferred, reason: ReasonCapSMS24h, until: tomorrow(14, 2),
			sentence: "SMS 'demo-nudge' deferred to 14:02 America/Chicago tomorrow: SMS cap 1 per 24 h reached by 'webinar-reminder' sent 14:02."},
		{name: "cap frees in quiet hours", now: time.Date(2026, 3, 3, 22, 30, 0, 0, chicago),
			facts: func(f *Facts) {
				f.OnCap = OnCapDefer
				f.Recent = []Sent{{At: time.Date(2026, 3, 3, 7, 30, 0, 0, chicago), Channel: nudge.ChannelSMS, Journey: "x", Template: "early"}}
				f.Contact.Timezone = "America/Chicago"
			}, outcome: nudge.OutcomeDeferred, reason: ReasonQuietHours, until: tomorrow(8, 0)},
		{name: "cap frees after the deadline", now: time.Date(2026, 3, 3, 18, 0, 0, 0, chicago),
			facts: func(f *Facts) {
				f.OnCap, f.Deadline = OnCapDefer, tomorrow(12, 0)
				f.Recent = []Sent{sent(14, 2, "webinar", "webinar-reminder")}
			}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h},
		{name: "cap 3 per 7 days", facts: func(f *Facts) {
			for _, d := range []int{2, 4, 6} {
				f.Recent = append(f.Recent, Sent{At: now.Add(-time.Duration(d) * 24 * time.Hour), Channel: nudge.ChannelSMS, Journey: "x"})
			}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS7d},
		{name: "7-day cap defers to the oldest message's anniversary", facts: func(f *Facts) {
			f.OnCap = OnCapDefer
			for _, d := range []int{2, 4, 6} {
				f.Recent = append(f.Recent, Sent{At: now.Add(-time.Duration(d) * 24 * time.Hour), Channel: nudge.ChannelSMS, Journey: "x"})
			}
		}, outcome: nudge.OutcomeDeferred, reason: ReasonCapSMS7d, until: now.Add(24 * time.Hour)},
		{name: "email cap 2 per 24 h", facts: func(f *Facts) {
			f.Channel, f.Purpose = nudge.ChannelEmail, ""
			f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelEmail}, {At: now.Add(-2 * time.Hour), Channel: nudge.ChannelEmail}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonCapEmail24h},
		{name: "transactional counts and is capped by default", facts: func(f *Facts) {
			f.Purpose = "transactional"
			f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS, Transactional: true}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h},
		{name: "transactional bypass", policy: func(p *Policy) { p.Transactional.BypassCaps = true },
			facts: func(f *Facts) {
				f.Purpose = "transactional"
				f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS}}
			}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "bypassing transactional messages do not count", policy: func(p *Policy) { p.Transactional.BypassCaps = true },
			facts: func(f *Facts) {
				f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS, Transactional: true}}
			}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "bypassing transactional messages counted when configured", policy: func(p *Policy) {
			p.Transactional = Transactional{BypassCaps: true, CountWhenBypassing: true}
		}, facts: func(f *Facts) {
			f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS, Transactional: true}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h},
		{name: "journey cap", policy: func(p *Policy) {
			p.Caps = []Cap{{Channel: nudge.ChannelSMS, Limit: 5, Per: 24 * time.Hour}, {Channel: nudge.ChannelSMS, Limit: 1, Per: 7 * 24 * time.Hour, Scope: ScopeJourney}}
		}, facts: func(f *Facts) {
			f.Recent = []Sent{{At: now.Add(-time.Hour), Channel: nudge.ChannelSMS, Journey: "other"}, {At: now.Add(-72 * time.Hour), Channel: nudge.ChannelSMS, Journey: "demo"}}
		}, outcome: nudge.OutcomeSkipped, reason: "cap_journey_sms_7d"},
		{name: "step cap", facts: func(f *Facts) {
			f.Caps = []Cap{{Channel: nudge.ChannelSMS, Limit: 0, Per: time.Hour}}
		}, outcome: nudge.OutcomeSkipped, reason: "cap_sms_1h"},
		{name: "Florida cap", policy: func(p *Policy) { p.Caps = deleteCaps(p.Caps, 0, 2) },
			facts: func(f *Facts) {
				f.Contact.Phone = "+13055550100"
				for i := range 3 {
					f.Recent = append(f.Recent, Sent{At: now.Add(-time.Duration(i+1) * time.Hour), Channel: nudge.ChannelSMS})
				}
			}, outcome: nudge.OutcomeSkipped, reason: ReasonCapSMS24h},

		// 6. Priority.
		{name: "priority lost", policy: func(p *Policy) { p.Priorities["onboarding"] = 10 },
			facts: func(f *Facts) {
				f.Competing = []Pending{{Journey: "onboarding", Channel: nudge.ChannelSMS, Template: "welcome-sms", At: now.Add(time.Hour)}}
			}, outcome: nudge.OutcomeSkipped, reason: ReasonPriorityLost,
			sentence: "Skipped: SMS cap 1 per 24 h goes to higher-priority journey 'onboarding' ('welcome-sms') (priority 10 over 0)."},
		{name: "priority won", policy: func(p *Policy) { p.Priorities["demo"] = 10 },
			facts: func(f *Facts) {
				f.Competing = []Pending{{Journey: "onboarding", Channel: nudge.ChannelSMS, At: now}}
			}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "priority from facts", facts: func(f *Facts) {
			f.Priority = 1
			f.Competing = []Pending{{Journey: "onboarding", Priority: 2, Channel: nudge.ChannelSMS, At: now}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonPriorityLost},
		{name: "winner outside the cap window", policy: func(p *Policy) { p.Priorities["onboarding"] = 10 },
			facts: func(f *Facts) {
				f.Competing = []Pending{{Journey: "onboarding", Channel: nudge.ChannelSMS, At: now.Add(25 * time.Hour)}}
			}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "winner on another channel", policy: func(p *Policy) { p.Priorities["onboarding"] = 10 },
			facts: func(f *Facts) {
				f.Competing = []Pending{{Journey: "onboarding", Channel: nudge.ChannelEmail, At: now}}
			}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "equal priority: the earlier wins", facts: func(f *Facts) {
			f.Competing = []Pending{{Journey: "zeta", Channel: nudge.ChannelSMS, At: now.Add(-time.Minute)}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonPriorityLost},
		{name: "equal priority and time: the smaller journey id wins", facts: func(f *Facts) {
			f.Competing = []Pending{{Journey: "alpha", Channel: nudge.ChannelSMS, At: now}}
		}, outcome: nudge.OutcomeSkipped, reason: ReasonPriorityLost},
		{name: "equal priority and time: the larger journey id loses", facts: func(f *Facts) {
			f.Competing = []Pending{{Journey: "zeta", Channel: nudge.ChannelSMS, At: now}}
		}, outcome: nudge.OutcomeSent, reason: ReasonAllowed},
		{name: "priority lost, deferred past the winner", policy: func(p *Policy) { p.Priorities["onboarding"] = 10 },
			facts: func(f *Facts) {
				f.OnCap = OnCapDefer
				f.Competing = []Pending{{Journey: "onboarding", Channel: nudge.ChannelSMS, At: now.Add(time.Hour)}}
			}, outcome: nudge.OutcomeDeferred, reason: ReasonPriorityLost, until: now.Add(25 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := noJitter()
			if c.policy != nil {
				c.policy(p)
			}
			f := facts()
			if c.facts != nil {
				c.facts(f)
			}
			at := now
			if !c.now.IsZero() {
				at = c.now
			}
			d := p.Evaluate(f, at)
			if d.Outcome != c.outcome || d.Reason != c.reason {
				t.Fatalf("got %s %s, want %s %s (%s)", d.Outcome, d.Reason, c.outcome, c.reason, d.Sentence)
			}
			if !c.until.IsZero() && !d.Until.Equal(c.until) {
				t.Errorf("until %s, want %s (%s)", d.Until.In(chicago), c.until.In(chicago), d.Sentence)
			}
			if c.sentence != "" && d.Sentence != c.sentence {
				t.Errorf("sentence\n got %s\nwant %s", d.Sentence, c.sentence)
			}
			if d.Sentence == "" {
				t.Error("no sentence")
			}
			r := d.Record(3)
			if r.Reason != d.Reason || r.PolicyVersion != 3 || r.Details["zone"] == nil {
				t.Errorf("record %+v", r)
			}
			if d.Outcome == nudge.OutcomeDeferred {
				if u, ok := r.Details["until"].(time.Time); !ok || !u.Equal(d.Until) {
					t.Errorf("record until %v", r.Details["until"])
				}
			}
			if strings.Contains(d.Sentence, "%!") {
				t.Errorf("bad format: %s", d.Sentence)
			}
		})
	}
}

func deleteCaps(cs []Cap, i, j int) []Cap { return append(cs[:i:i], cs[j:]...) }
