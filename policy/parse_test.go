package policy

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
)

const fullPolicy = `timezone: America/Chicago
consent:
  email:
    marketing: opted_in
sms:
  purposes: [reminder, decision_point, transactional]
  awareness_stages: [subscriber, lead]
  engagement:
    within: 14d
    events: [email.clicked, page.viewed]
quiet_hours:
  sms:
    allow: "09:00-20:00"
    transactional: false
    regions:
      US-TX: {allow: "09:00-21:00", days: [mon, tue, wed, thu, fri, sat]}
  email:
    allow: "07:00-22:00"
    closed: [2026-12-25]
jitter: 30m
caps:
  - {channel: sms, limit: 1, per: 24h}
  - {channel: sms, limit: 2, calendar_days: 7}
  - {channel: email, limit: 1, per: 3d, scope: journey}
transactional:
  bypass_caps: true
on_cap: defer
priorities:
  onboarding: 10
  newsletter: -5
keywords:
  program: Acme Events
  support: help@acme.example
  revocation: opt_out
`

func TestParse(t *testing.T) {
	p, err := Parse("policy.yaml", []byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.Timezone != "America/Chicago" || p.Consent["email/marketing"] != RequireOptedIn || p.Consent["sms/marketing"] != RequireOptedIn {
		t.Errorf("timezone/consent: %s %v", p.Timezone, p.Consent)
	}
	if diff := cmp.Diff(SMSRules{
		Purposes:        []string{"reminder", "decision_point", "transactional"},
		AwarenessStages: []string{"subscriber", "lead"},
		Engagement:      &Engagement{Within: 14 * 24 * time.Hour, Events: []string{"email.clicked", "page.viewed"}},
	}, p.SMS); diff != "" {
		t.Errorf("sms (-want +got):\n%s", diff)
	}
	sms := p.Quiet[nudge.ChannelSMS]
	if sms.Allow.Start != 9*60 || sms.Allow.End != 20*60 || sms.Allow.Days != AllDays || sms.Transactional {
		t.Errorf("sms quiet hours: %+v", sms)
	}
	if tx := sms.Regions["US-TX"]; tx.Start != 9*60 || tx.End != 21*60 || tx.Days.Has(time.Sunday) {
		t.Errorf("US-TX: %+v", tx)
	}
	if _, ok := sms.Regions["US-FL"]; !ok {
		t.Error("the shipped regions were dropped")
	}
	if e := p.Quiet[nudge.ChannelEmail]; e == nil || e.Allow.Start != 7*60 || len(e.Allow.Dates) != 1 {
		t.Errorf("email quiet hours: %+v", e)
	}
	if p.Jitter != 30*time.Minute || p.OnCap != OnCapDefer || !p.Transactional.BypassCaps || p.Priorities["newsletter"] != -5 {
		t.Errorf("jitter %s on_cap %s transactional %+v priorities %v", p.Jitter, p.OnCap, p.Transactional, p.Priorities)
	}
	var codes []string
	for _, c := range p.Caps {
		codes = append(codes, c.Reason()+" "+c.String())
	}
	if diff := cmp.Diff([]string{
		"cap_sms_24h SMS cap 1 per 24 h",
		"cap_sms_cal7d SMS cap 2 per 7 calendar days",
		"cap_journey_email_3d journey email cap 1 per 3 days",
	}, codes); diff != "" {
		t.Errorf("caps (-want +got):\n%s", diff)
	}
	if !p.Keywords.RevocationOptOut || p.Keywords.Program != "Acme Events" || len(p.Keywords.Languages) != 2 {
		t.Errorf("keywords: %+v", p.Keywords)
	}
	if p, err := Parse("empty.yaml", nil); err != nil || p.Quiet[nudge.ChannelSMS] == nil || len(p.Caps) != len(Default().Caps) {
		t.Errorf("an empty file is the default: %v", err)
	}
	if p, _ := Parse("p.yaml", []byte("quiet_hours:\n  sms: none\n")); p.Quiet[nudge.ChannelSMS] != nil {
		t.Error("sms: none keeps quiet hours")
	}
}

func TestParseProblems(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown field", "timezon: UTC\n", `p.yaml:1:1: unknown field "timezon" in policy; did you mean "timezone"?`},
		{"bad zone", "timezone: Mars/Base\n", `p.yaml:1:11: timezone: unknown time zone "Mars/Base"`},
		{"marketing SMS loosened", "consent:\n  sms:\n    marketing: not_opted_out\n", `p.yaml:3:16: consent: sms: marketing: marketing SMS needs opted_in consent`},
		{"bad requirement", "consent:\n  email:\n    marketing: maybe\n", `p.yaml:3:16: consent: email: marketing: "maybe" is not allowed`},
		{"unknown channel", "consent:\n  push: {}\n", `p.yaml:2:3: consent: unknown channel "push"`},
		{"bad purpose", "sms:\n  purposes: [promo]\n", `p.yaml:2:13: sms: purposes: unknown purpose "promo"`},
		{"bad window", "quiet_hours:\n  sms:\n    allow: 8am-9pm\n", `p.yaml:3:12: quiet_hours: sms: allow: bad window "8am-9pm"`},
		{"backwards window", "quiet_hours:\n  sms:\n    allow: \"21:00-08:00\"\n", `p.yaml:3:12: quiet_hours: sms: allow: "21:00-08:00" must start before it ends`},
		{"bad day", "quiet_hours:\n  sms:\n    days: [mon, sun, funday]\n", `p.yaml:3:11: quiet_hours: sms: days: unknown day "funday"`},
		{"bad region", "quiet_hours:\n  sms:\n    regions:\n      florida: {allow: \"08:00-20:00\"}\n", `p.yaml:4:7: quiet_hours: sms: regions: bad region "florida"`},
		{"jitter without unit", "jitter: 15\n", `p.yaml:1:9: jitter: 15 has no unit`},
		{"cap without window", "caps:\n  - {channel: sms, limit: 1}\n", `p.yaml:2:5: caps[0]: the window is missing`},
		{"cap with both windows", "caps:\n  - channel: sms\n    limit: 1\n    per: 24h\n    calendar_days: 1\n", `p.yaml:5:20: caps[0]: per and calendar_days are both given`},
		{"cap limit", "caps:\n  - {channel: sms, limit: -1, per: 1d}\n", `p.yaml:2:27: caps[0]: limit must be a whole number from 0 to 1000`},
		{"on_cap", "on_cap: drop\n", `p.yaml:1:9: on_cap: "drop" is not allowed; write one of: skip, defer`},
		{"duplicate", "jitter: 1m\njitter: 2m\n", `p.yaml:2:1: policy: field "jitter" is given twice (first at line 1); keep one`},
		{"syntax", "caps: [\n", `p.yaml:1:`},
		{"help without rates", "keywords:\n  languages:\n    - code: en\n      opt_out: [STOP]\n      replies: {opt_out: bye, opt_in: hi, help: \"{program}: call {support}\"}\n", `help must say "Msg & data rates may apply"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.src))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got\n%s\nwant it to contain\n%s", err, c.want)
			}
			var ne *nudge.Error
			if !errors.As(err, &ne) || ne.Code != nudge.EINVALID {
				t.Errorf("not EINVALID: %v", err)
			}
		})
	}
	// Every problem is reported, not only the first.
	_, err := Parse("p.yaml", []byte("timezone: Mars/Base\non_cap: drop\njitter: 15\n"))
	if n := len(err.(*ValidationError).Problems); n != 3 {
		t.Errorf("%d problems, want 3: %v", n, err)
	}
}

func TestParseOptOutNoticeAndBudgets(t *testing.T) {
	if d := Default(); d.OptOutNotice != (OptOutNotice{Text: "Reply STOP to opt out", When: NoticeFirst}) || len(d.SMSBudgets) != 0 {
		t.Errorf("default: notice %+v, budgets %v; want the notice on the first text, no budgets", d.OptOutNotice, d.SMSBudgets)
	}
	p, err := Parse("p.yaml", []byte("opt_out_notice: {text: \"Text STOP to end\", when: every}\nsms_budgets:\n  webinar-reminder: 500\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.OptOutNotice != (OptOutNotice{Text: "Text STOP to end", When: NoticeEvery}) || p.SMSBudgets["webinar-reminder"] != 500 {
		t.Errorf("notice %+v, budgets %v", p.OptOutNotice, p.SMSBudgets)
	}
	for src, want := range map[string]string{
		"opt_out_notice: {when: sometimes}\n": `p.yaml:1:24: opt_out_notice: when: "sometimes" is not allowed; write one of: first, every, never`,
		"opt_out_notice: {text: Bye now}\n":   `p.yaml:1:24: opt_out_notice: text "Bye now" does not say how to opt out`,
		"opt_out_notice: {txt: STOP}\n":       `p.yaml:1:18: unknown field "txt" in opt_out_notice; did you mean "text"?`,
		"sms_budgets:\n  webinar: lots\n":     `p.yaml:2:12: sms_budgets: webinar (segments per day) must be a whole number`,
		"sms_budgets:\n  webinar: 0\n":        `p.yaml:2:12: sms_budgets: webinar (segments per day) must be a whole number from 1`,
		"sms_budgets: [webinar]\n":            `p.yaml:1:14: sms_budgets must be a mapping`,
	} {
		_, err := Parse("p.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want %s", src, err, want)
		}
	}
}

func TestTighten(t *testing.T) {
	base := Default()
	o, err := ParseOverride("webinar.yaml", []byte(`consent:
  email:
    marketing: opted_in
sms:
  purposes: [reminder]
  awareness_stages: [lead]
quiet_hours:
  sms:
    allow: "10:00-18:00"
    days: [mon, tue, wed, thu, fri]
caps:
  - {channel: sms, limit: 1, per: 3d, scope: journey}
on_cap: defer
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := base.Tighten(o, "journey webinar")
	if err != nil {
		t.Fatal(err)
	}
	if p.Consent["email/marketing"] != RequireOptedIn || len(p.SMS.Purposes) != 1 || len(p.SMS.AwarenessStages) != 2 ||
		len(p.Quiet[nudge.ChannelSMS].Tight) != 1 || len(p.Caps) != len(base.Caps)+1 || p.OnCap != OnCapDefer {
		t.Errorf("tightened: %+v", p)
	}
	if base.Consent["email/marketing"] != RequireNotOptedOut || len(base.Caps) != 6 || len(base.Quiet[nudge.ChannelSMS].Tight) != 0 {
		t.Error("Tighten changed the workspace policy")
	}
	// A Saturday noon: the journey's window keeps it for Monday 10:00.
	f := facts()
	f.Contact.Timezone, f.Contact.LifecycleStage = "America/Chicago", nudge.StageCustomer
	d := p.Evaluate(f, time.Date(2026, 3, 7, 12, 0, 0, 0, chicago))
	if d.Reason != ReasonQuietDay || d.Until.Before(time.Date(2026, 3, 9, 10, 0, 0, 0, chicago)) {
		t.Errorf("got %s until %s", d.Reason, d.Until)
	}
	// A step tightens the journey's further.
	step, err := ParseOverride("webinar.yaml", []byte("quiet_hours:\n  sms:\n    allow: \"11:00-12:00\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tighten(step, "step reminder"); err != nil {
		t.Errorf("step: %v", err)
	}

	loosen := []struct{ name, src, want string }{
		{"consent", "consent:\n  sms:\n    transactional: not_opted_out\n  email:\n    marketing: not_opted_out\n", ""},
		{"purpose", "sms:\n  purposes: [reminder, promo]\n", `unknown purpose "promo"`},
		{"wider window", "quiet_hours:\n  sms:\n    allow: \"07:00-21:00\"\n", `webinar.yaml:2:3: quiet_hours: sms: 07:00–21:00 is wider than the workspace's 08:00–21:00; journey webinar can only tighten the workspace policy, never loosen it`},
		{"looser cap", "caps:\n  - {channel: sms, limit: 2, per: 24h}\n", `webinar.yaml:2:5: caps: SMS cap 2 per 24 h loosens the workspace's SMS cap 1 per 24 h; journey webinar can only tighten`},
	}
	for _, c := range loosen {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseOverride("webinar.yaml", []byte(c.src))
			if err == nil {
				_, err = base.Tighten(o, "journey webinar")
			}
			if c.want == "" {
				if err != nil {
					t.Errorf("consent within the workspace's: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %s", err, c.want)
			}
		})
	}
	strict := Default()
	strict.Consent["email/marketing"] = RequireOptedIn
	strict.SMS.Engagement = &Engagement{Within: 7 * 24 * time.Hour, Events: []string{"email.clicked"}}
	o, _ = ParseOverride("j.yaml", []byte("consent:\n  email:\n    marketing: not_opted_out\nsms:\n  engagement:\n    within: 30d\n"))
	_, err = strict.Tighten(o, "journey j")
	if err == nil || len(err.(*ValidationError).Problems) != 2 || !strings.Contains(err.Error(), "j.yaml:3:16: consent: email/marketing: not_opted_out loosens the workspace's opted_in") {
		t.Errorf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullPolicy))
	f.Add([]byte("caps: [{channel: sms}]\n"))
	f.Add([]byte("quiet_hours: {sms: {allow: \"24:00-24:00\"}}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("f.yaml", src)
		if err == nil {
			_ = p.Evaluate(facts(), now)
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("not a ValidationError: %v", err)
		}
	})
}

// The example policy file in the package documentation parses.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, "//\ttimezone:") {
			in = true
		}
		if in {
			if !strings.HasPrefix(line, "//\t") {
				break
			}
			b.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
		}
	}
	if b.Len() == 0 {
		t.Fatal("no example in doc.go")
	}
	p, err := Parse("doc.go", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Priorities["onboarding"] != 10 || len(p.Caps) != 4 || p.Keywords.Program != "Acme Events" {
		t.Errorf("parsed %+v", p)
	}
}
