package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nyaruka/phonenumbers"
	"pgregory.net/rapid"
)

var (
	genZones  = []string{"", "", "America/Chicago", "Europe/Paris", "Asia/Kolkata", "Mars/Base"}
	genPhones = []string{"", "+13125550100", "+12085550100", "+13055550100", "+12055550100", "+14015550100",
		"+15025550100", "+17025550100", "+33612345678", "+447700900123", "+16015550100", "+15055550100"}
	genStages   = []string{"", nudge.StageSubscriber, nudge.StageLead, nudge.StageCustomer}
	genPurposes = []string{"reminder", "decision_point", "onboarding", "transactional", "", "promo"}
	genStatuses = []string{nudge.ConsentOptedIn, nudge.ConsentOptedOut, nudge.ConsentUnknown}
	genSources  = []string{nudge.SourceForm, nudge.SourceKeyword, nudge.SourceImport}
	genJourneys = []string{"demo", "other", "alpha", "zeta"}
)

func genFacts(t *rapid.T, now time.Time) *Facts {
	f := &Facts{
		Channel:  rapid.SampledFrom(nudge.Channels).Draw(t, "channel"),
		Purpose:  rapid.SampledFrom(genPurposes).Draw(t, "purpose"),
		Journey:  rapid.SampledFrom(genJourneys).Draw(t, "journey"),
		Step:     "s",
		Template: "t",
		OnCap:    rapid.SampledFrom([]string{"", OnCapSkip, OnCapDefer}).Draw(t, "on_cap"),
		Contact: &nudge.Contact{
			ID:             rapid.StringMatching(`c[0-9]{1,4}`).Draw(t, "id"),
			Timezone:       rapid.SampledFrom(genZones).Draw(t, "tz"),
			Phone:          rapid.SampledFrom(genPhones).Draw(t, "phone"),
			LifecycleStage: rapid.SampledFrom(genStages).Draw(t, "stage"),
		},
	}
	if f.Channel == nudge.ChannelEmail && rapid.Bool().Draw(t, "email purpose") {
		f.Purpose = ""
	}
	for _, ch := range nudge.Channels {
		for _, pu := range []string{nudge.PurposeMarketing, nudge.PurposeTransactional} {
			if rapid.Bool().Draw(t, "has consent") {
				f.Consent = append(f.Consent, &nudge.ConsentState{Channel: ch, Purpose: pu,
					Status: rapid.SampledFrom(genStatuses).Draw(t, "status"), Source: rapid.SampledFrom(genSources).Draw(t, "source")})
			}
		}
	}
	if rapid.IntRange(0, 5).Draw(t, "suppressed") == 0 {
		f.Suppressions = []Suppression{{Channel: rapid.SampledFrom([]string{"", nudge.ChannelSMS, nudge.ChannelEmail}).Draw(t, "sup channel"), Kind: SuppressDoNotContact}}
	}
	for range rapid.IntRange(0, 6).Draw(t, "recent") {
		f.Recent = append(f.Recent, Sent{
			At:            now.Add(time.Duration(rapid.IntRange(-8*24*60, 24*60).Draw(t, "ago")) * time.Minute),
			Channel:       rapid.SampledFrom(nudge.Channels).Draw(t, "recent channel"),
			Journey:       rapid.SampledFrom(genJourneys).Draw(t, "recent journey"),
			Transactional: rapid.Bool().Draw(t, "recent transactional"),
		})
	}
	for range rapid.IntRange(0, 2).Draw(t, "competing") {
		f.Competing = append(f.Competing, Pending{
			Journey:  rapid.SampledFrom(genJourneys).Draw(t, "pending journey"),
			Priority: rapid.IntRange(-1, 1).Draw(t, "pending priority"),
			Channel:  rapid.SampledFrom(nudge.Channels).Draw(t, "pending channel"),
			At:       now.Add(time.Duration(rapid.IntRange(-60, 48*60).Draw(t, "pending at")) * time.Minute),
		})
	}
	if rapid.IntRange(0, 3).Draw(t, "has deadline") == 0 {
		f.Deadline = now.Add(time.Duration(rapid.IntRange(-60, 3*24*60).Draw(t, "deadline")) * time.Minute)
	}
	return f
}

// zonesOf finds the candidate zones without the package's code: the
// contact's zone, else libphonenumber's for the number, else the default.
func zonesOf(c *nudge.Contact) []*time.Location {
	if loc, err := time.LoadLocation(c.Timezone); err == nil && c.Timezone != "" {
		return []*time.Location{loc}
	}
	var out []*time.Location
	if c.Phone != "" {
		tzs, _ := phonenumbers.GetTimezonesForPrefix(c.Phone)
		for _, tz := range tzs {
			if loc, err := time.LoadLocation(tz); err == nil {
				out = append(out, loc)
			}
		}
	}
	if len(out) == 0 {
		loc, _ := time.LoadLocation("America/New_York")
		out = append(out, loc)
	}
	return out
}

// smsWindow is the window a contact's number gets: its region's, else
// the TCPA's.
func smsWindow(c *nudge.Contact) Window {
	region := ""
	if len(c.Phone) > 5 && c.Phone[:2] == "+1" {
		region = nanpRegions[c.Phone[2:5]]
	} else if len(c.Phone) > 3 && c.Phone[:3] == "+33" {
		region = "FR"
	}
	if w, ok := ShippedRegions()[region]; ok {
		return w
	}
	return Window{Start: 8 * 60, End: 21 * 60, Days: AllDays}
}

func inQuietHours(c *nudge.Contact, t time.Time) (string, bool) {
	w := smsWindow(c)
	for _, loc := range zonesOf(c) {
		lt := t.In(loc)
		mins := lt.Hour()*60 + lt.Minute()
		if !w.Days.Has(lt.Weekday()) || mins < w.Start || mins >= w.End {
			return lt.Format("Mon 15:04 MST ") + loc.String(), true
		}
	}
	return "", false
}

func TestPropertyGuardrails(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(t *rapid.T) {
		p := Default()
		p.Jitter = time.Duration(rapid.IntRange(0, 60).Draw(t, "jitter")) * time.Minute
		p.Transactional.BypassCaps = rapid.Bool().Draw(t, "bypass")
		now := start.Add(time.Duration(rapid.Int64Range(0, 365*24*3600).Draw(t, "now")) * time.Second)
		f := genFacts(t, now)
		d := p.Evaluate(f, now)
		if d.Sentence == "" || d.Reason == "" {
			t.Fatalf("no reason or sentence: %+v", d)
		}
		switch d.Outcome {
		case nudge.OutcomeSkipped:
			return
		case nudge.OutcomeDeferred:
			if !d.Until.After(now) {
				t.Fatalf("deferred to %s, not after now %s", d.Until, now)
			}
			if f.Channel == nudge.ChannelSMS && d.Reason != ReasonConsentUnavailable {
				if at, quiet := inQuietHours(f.Contact, d.Until); quiet {
					t.Fatalf("deferred into quiet hours: %s (%s)", at, d.Sentence)
				}
			}
			if !f.Deadline.IsZero() && !d.Until.Before(f.Deadline) {
				t.Fatalf("deferred past the deadline: %s", d.Sentence)
			}
			return
		case nudge.OutcomeSent:
		default:
			t.Fatalf("outcome %q", d.Outcome)
		}
		// Allowed: check every guardrail independently.
		for _, s := range f.Suppressions {
			if s.Channel == "" || s.Channel == f.Channel {
				t.Fatalf("sent to a suppressed %q address", s.Channel)
			}
		}
		marketing := f.Purpose != "transactional"
		if f.Channel == nudge.ChannelSMS && marketing {
			i := slices.IndexFunc(f.Consent, func(s *nudge.ConsentState) bool {
				return s.Channel == nudge.ChannelSMS && s.Purpose == nudge.PurposeMarketing
			})
			if i < 0 || f.Consent[i].Status != nudge.ConsentOptedIn {
				t.Fatalf("marketing SMS without opted_in consent: %s", d.Sentence)
			}
		}
		for _, s := range f.Consent {
			if s.Channel == f.Channel && s.Status == nudge.ConsentOptedOut && (s.Purpose == f.consentPurpose() || s.Source == nudge.SourceKeyword && f.Channel == nudge.ChannelSMS) {
				t.Fatalf("sent after an opt-out: %s", d.Sentence)
			}
		}
		if f.Channel == nudge.ChannelSMS {
			if at, quiet := inQuietHours(f.Contact, now); quiet {
				t.Fatalf("SMS sent in quiet hours: %s (%s)", at, d.Sentence)
			}
		}
		if !f.Deadline.IsZero() && !now.Before(f.Deadline) {
			t.Fatal("sent after its deadline")
		}
		if f.Transactional() && p.Transactional.BypassCaps {
			return
		}
		region := p.Locate(f.Contact.Timezone, f.Contact.Phone).Region
		for _, c := range p.Caps {
			if c.Channel != f.Channel || c.Region != "" && c.Region != region {
				continue
			}
			n := 0
			for _, m := range f.Recent {
				if m.Channel != c.Channel || m.Transactional && p.Transactional.BypassCaps {
					continue
				}
				if c.Per > 0 && m.At.After(now.Add(-c.Per)) {
					n++
				}
				if c.Days > 0 { // in the calendar of any zone the contact may be in
					for _, z := range zonesOf(f.Contact) {
						y, mo, dd := now.In(z).Date()
						if !m.At.Before(time.Date(y, mo, dd-c.Days+1, 0, 0, 0, 0, z)) {
							n++
							break
						}
					}
				}
			}
			if n+1 > c.Limit {
				t.Fatalf("sent beyond %s: %d earlier messages (%s)", c, n, d.Sentence)
			}
		}
	})
}
