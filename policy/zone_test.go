package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nyaruka/phonenumbers"
)

func TestLocate(t *testing.T) {
	p := Default()
	cases := []struct {
		name, tz, phone string
		zones           []string
		source, region  string
		prefix          string
	}{
		{"contact zone", "Europe/Paris", "+13125550100", []string{"Europe/Paris"}, ZoneFromContact, "", "+1 312"},
		{"phone", "", "+13125550100", []string{"America/Chicago"}, ZoneFromPhone, "", "+1 312"},
		{"phone, two zones", "", "+12085550100", []string{"America/Boise", "America/Los_Angeles"}, ZoneFromPhone, "", "+1 208"},
		{"Florida", "", "+13055550100", []string{"America/New_York"}, ZoneFromPhone, "US-FL", "+1 305"},
		{"Florida number, zone from contact", "America/Denver", "+19545550100", []string{"America/Denver"}, ZoneFromContact, "US-FL", "+1 954"},
		{"France", "", "+33612345678", []string{"Europe/Paris"}, ZoneFromPhone, "FR", "+33"},
		{"no zone, no phone", "", "", []string{"America/New_York"}, ZoneFromDefault, "", ""},
		{"unknown zone", "Mars/Base", "", []string{"America/New_York"}, ZoneFromDefault, "", ""},
		{"unknown zone, phone", "Mars/Base", "+13125550100", []string{"America/Chicago"}, ZoneFromPhone, "", "+1 312"},
		{"not E.164", "", "3125550100", []string{"America/New_York"}, ZoneFromDefault, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z := p.Locate(c.tz, c.phone)
			if !slices.Equal(z.Names, c.zones) || z.Source != c.source || z.Region != c.region || z.Prefix != c.prefix {
				t.Errorf("got %v %s %q %q, want %v %s %q %q", z.Names, z.Source, z.Region, z.Prefix, c.zones, c.source, c.region, c.prefix)
			}
		})
	}
	// The library is the reference: the +1 208 zones are what it says.
	want, _ := phonenumbers.GetTimezonesForPrefix("+12085550100")
	if got := p.Locate("", "+12085550100").Names; !slices.Equal(got, want) {
		t.Errorf("+1 208: %v, libphonenumber %v", got, want)
	}
	if z := p.Locate("Mars/Base", ""); !strings.Contains(z.Describe(), "Mars/Base") {
		t.Errorf("describe: %s", z.Describe())
	}
}

// TestNANPRegionsAgreeWithGeocoder checks the hand table of area codes
// against libphonenumber's geocoding, which names the state (or a city and
// its state) for most codes; codes too new for its data are logged.
func TestNANPRegionsAgreeWithGeocoder(t *testing.T) {
	names := map[string]string{
		"US-FL": "Florida", "US-OK": "Oklahoma", "US-MD": "Maryland", "US-AL": "Alabama", "US-LA": "Louisiana",
		"US-MS": "Mississippi", "US-MA": "Massachusetts", "US-KY": "Kentucky", "US-MI": "Michigan", "US-MN": "Minnesota",
		"US-NM": "New Mexico", "US-NV": "Nevada", "US-RI": "Rhode Island",
	}
	for code, region := range nanpRegions {
		num, err := phonenumbers.Parse("+1"+code+"2345678", "")
		if err != nil {
			t.Fatal(err)
		}
		g, _ := phonenumbers.GetGeocodingForNumber(num, "en")
		abbr := ", " + strings.TrimPrefix(region, "US-")
		switch {
		case strings.Contains(g, names[region]) || strings.HasSuffix(g, abbr):
		case g == "" || g == "United States":
			t.Logf("area code %s (%s): libphonenumber has no place for it", code, region)
		default:
			t.Errorf("area code %s is %s here, but libphonenumber says %q", code, region, g)
		}
	}
}

// TestRegions checks every shipped regional rule at its edges.
func TestRegions(t *testing.T) {
	p := noJitter()
	// 2026-03-02 is a Monday; 03-07 a Saturday, 03-08 a Sunday.
	at := func(zone string, day, h, m int) time.Time {
		return time.Date(2026, 3, day, h, m, 0, 0, mustLoc(t, zone))
	}
	cases := []struct {
		region, phone, zone string
		day, h, m           int
		reason              string // ReasonAllowed, ReasonQuietHours, ReasonQuietDay
	}{
		{"US-FL", "+13055550100", "America/New_York", 2, 19, 59, ReasonAllowed},
		{"US-FL", "+13055550100", "America/New_York", 2, 20, 0, ReasonQuietHours},
		{"US-FL", "+13055550100", "America/New_York", 2, 7, 59, ReasonQuietHours},
		{"US-OK", "+14055550100", "America/Chicago", 2, 19, 59, ReasonAllowed},
		{"US-OK", "+14055550100", "America/Chicago", 2, 20, 0, ReasonQuietHours},
		{"US-MD", "+14105550100", "America/New_York", 2, 20, 0, ReasonQuietHours},
		{"US-MD", "+14105550100", "America/New_York", 8, 8, 0, ReasonAllowed},
		{"US-AL", "+12055550100", "America/Chicago", 2, 19, 59, ReasonAllowed},
		{"US-AL", "+12055550100", "America/Chicago", 2, 20, 0, ReasonQuietHours},
		{"US-AL", "+12055550100", "America/Chicago", 8, 12, 0, ReasonQuietDay},
		{"US-LA", "+15045550100", "America/Chicago", 8, 12, 0, ReasonQuietDay},
		{"US-LA", "+15045550100", "America/Chicago", 7, 20, 0, ReasonQuietHours},
		{"US-LA", "+15045550100", "America/Chicago", 7, 19, 0, ReasonAllowed},
		{"US-MS", "+16015550100", "America/Chicago", 8, 12, 0, ReasonQuietDay},
		{"US-MS", "+16015550100", "America/Chicago", 7, 20, 30, ReasonAllowed},
		{"US-MS", "+16015550100", "America/Chicago", 7, 21, 0, ReasonQuietHours},
		{"US-MA", "+16175550100", "America/New_York", 2, 19, 59, ReasonAllowed},
		{"US-MA", "+16175550100", "America/New_York", 2, 20, 0, ReasonQuietHours},
		{"US-KY", "+15025550100", "America/New_York", 2, 9, 59, ReasonQuietHours},
		{"US-KY", "+15025550100", "America/New_York", 2, 10, 0, ReasonAllowed},
		{"US-KY", "+15025550100", "America/New_York", 2, 20, 59, ReasonAllowed},
		{"US-MI", "+13135550100", "America/New_York", 2, 8, 59, ReasonQuietHours},
		{"US-MI", "+13135550100", "America/New_York", 2, 9, 0, ReasonAllowed},
		{"US-MN", "+16125550100", "America/Chicago", 2, 8, 30, ReasonQuietHours},
		{"US-MN", "+16125550100", "America/Chicago", 2, 20, 30, ReasonAllowed},
		{"US-NM", "+15055550100", "America/Denver", 2, 8, 30, ReasonQuietHours},
		{"US-NM", "+15055550100", "America/Denver", 2, 9, 0, ReasonAllowed},
		{"US-NV", "+17025550100", "America/Los_Angeles", 2, 8, 30, ReasonQuietHours},
		{"US-NV", "+17025550100", "America/Los_Angeles", 2, 19, 59, ReasonAllowed},
		{"US-NV", "+17025550100", "America/Los_Angeles", 2, 20, 0, ReasonQuietHours},
		{"US-RI", "+14015550100", "America/New_York", 2, 17, 59, ReasonAllowed},
		{"US-RI", "+14015550100", "America/New_York", 2, 18, 0, ReasonQuietHours},
		{"US-RI", "+14015550100", "America/New_York", 2, 8, 30, ReasonQuietHours},
		{"US-RI", "+14015550100", "America/New_York", 7, 12, 0, ReasonQuietDay},
		{"FR", "+33612345678", "Europe/Paris", 2, 21, 59, ReasonAllowed},
		{"FR", "+33612345678", "Europe/Paris", 2, 22, 0, ReasonQuietHours},
		{"FR", "+33612345678", "Europe/Paris", 2, 7, 59, ReasonQuietHours},
		{"FR", "+33612345678", "Europe/Paris", 8, 12, 0, ReasonQuietDay},
		{"", "+13125550100", "America/Chicago", 8, 12, 0, ReasonAllowed}, // Illinois: TCPA only
		{"", "+13125550100", "America/Chicago", 2, 20, 30, ReasonAllowed},
	}
	for _, c := range cases {
		now := at(c.zone, c.day, c.h, c.m)
		t.Run(c.region+" "+now.Format("Mon 15:04"), func(t *testing.T) {
			f := facts()
			f.Contact.Phone = c.phone
			if z := p.Locate("", c.phone); z.Region != c.region || z.Names[0] != c.zone {
				t.Fatalf("located %v %q, want %s %q", z.Names, z.Region, c.zone, c.region)
			}
			d := p.Evaluate(f, now)
			if d.Reason != c.reason {
				t.Fatalf("got %s, want %s (%s)", d.Reason, c.reason, d.Sentence)
			}
			if d.Outcome == nudge.OutcomeDeferred {
				// The time it is deferred to is allowed.
				if d2 := p.Evaluate(f, d.Until); d2.Reason != ReasonAllowed {
					t.Errorf("deferred to %s, which is %s (%s)", d.Until, d2.Reason, d2.Sentence)
				}
			}
		})
	}
}

func TestQuietHoursAcrossZonesAndDST(t *testing.T) {
	p := noJitter()
	cases := []struct {
		name      string
		tz, phone string
		now       time.Time
		until     time.Time
		sentence  string
	}{
		{name: "US spring forward", tz: "America/Chicago",
			now:   time.Date(2026, 3, 7, 22, 0, 0, 0, chicago),
			until: time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC)}, // 08:00 CDT
		{name: "US fall back", tz: "America/Chicago",
			now:   time.Date(2026, 10, 31, 22, 0, 0, 0, chicago),
			until: time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC)}, // 08:00 CST
		{name: "Paris spring forward on a Sunday", phone: "+33612345678",
			now:   time.Date(2026, 3, 28, 22, 30, 0, 0, mustLoc(t, "Europe/Paris")),
			until: time.Date(2026, 3, 30, 6, 0, 0, 0, time.UTC)}, // Monday 08:00 CEST
		{name: "Paris fall back on a Sunday", phone: "+33612345678",
			now:   time.Date(2026, 10, 24, 22, 30, 0, 0, mustLoc(t, "Europe/Paris")),
			until: time.Date(2026, 10, 26, 7, 0, 0, 0, time.UTC)}, // Monday 08:00 CET
		{name: "+1 208: allowed in Boise, not yet in Los Angeles", phone: "+12085550100",
			now:      time.Date(2026, 3, 3, 8, 30, 0, 0, mustLoc(t, "America/Boise")),
			until:    time.Date(2026, 3, 3, 8, 0, 0, 0, mustLoc(t, "America/Los_Angeles")),
			sentence: "SMS 'demo-nudge' deferred to 09:00 America/Boise (quiet hours 21:00–08:00; it is 07:30 in America/Los_Angeles; zones America/Boise, America/Los_Angeles from phone +1 208)."},
		{name: "+1 208: over in Boise first", phone: "+12085550100",
			now:   time.Date(2026, 3, 3, 21, 30, 0, 0, mustLoc(t, "America/Boise")),
			until: time.Date(2026, 3, 4, 9, 0, 0, 0, mustLoc(t, "America/Boise"))},
		{name: "workspace default", now: time.Date(2026, 3, 3, 7, 0, 0, 0, mustLoc(t, "America/New_York")),
			until:    time.Date(2026, 3, 3, 8, 0, 0, 0, mustLoc(t, "America/New_York")),
			sentence: "SMS 'demo-nudge' deferred to 08:00 America/New_York (quiet hours 21:00–08:00; workspace default zone)."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := facts()
			f.Contact.Timezone, f.Contact.Phone = c.tz, c.phone
			d := p.Evaluate(f, c.now)
			if d.Outcome != nudge.OutcomeDeferred || !d.Until.Equal(c.until) {
				t.Fatalf("got %s until %s, want until %s (%s)", d.Outcome, d.Until.UTC(), c.until.UTC(), d.Sentence)
			}
			if c.sentence != "" && d.Sentence != c.sentence {
				t.Errorf("sentence\n got %s\nwant %s", d.Sentence, c.sentence)
			}
		})
	}
}

// A window that starts inside the spring-forward gap (02:30 does not exist
// on 8 March in Chicago) opens at the first minute after it: 03:00 CDT.
func TestWindowStartInDSTGap(t *testing.T) {
	p := noJitter()
	p.Quiet[nudge.ChannelSMS].Allow = Window{Start: 2*60 + 30, End: 23 * 60, Days: AllDays}
	f := facts()
	f.Contact.Timezone = "America/Chicago"
	d := p.Evaluate(f, time.Date(2026, 3, 8, 1, 0, 0, 0, chicago))
	if want := time.Date(2026, 3, 8, 3, 0, 0, 0, chicago); !d.Until.Equal(want) {
		t.Fatalf("until %s, want %s (%s)", d.Until.In(chicago), want, d.Sentence)
	}
}

func TestJitter(t *testing.T) {
	p := Default() // 15 min
	night := time.Date(2026, 3, 3, 23, 0, 0, 0, chicago)
	start := time.Date(2026, 3, 4, 8, 0, 0, 0, chicago)
	seen := map[time.Time]bool{}
	for i := range 200 {
		f := facts()
		f.Contact.ID = "contact-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		d1 := p.Evaluate(f, night)
		d2 := p.Evaluate(f, night)
		if !d1.Until.Equal(d2.Until) {
			t.Fatalf("not deterministic: %s, then %s", d1.Until, d2.Until)
		}
		if d1.Until.Before(start) || !d1.Until.Before(start.Add(15*time.Minute)) {
			t.Fatalf("until %s outside [08:00, 08:15)", d1.Until.In(chicago))
		}
		seen[d1.Until] = true
	}
	if len(seen) < 150 {
		t.Errorf("200 contacts land on only %d distinct seconds", len(seen))
	}
	// The jitter never passes the end of the window nor the deadline.
	p.Jitter = 4 * time.Hour
	p.Quiet[nudge.ChannelSMS].Allow = Window{Start: 8 * 60, End: 8*60 + 10, Days: AllDays}
	for i := range 50 {
		f := facts()
		f.Contact.ID = strings.Repeat("x", i)
		f.Deadline = start.Add(5 * time.Minute)
		d := p.Evaluate(f, night)
		if d.Until.Before(start) || !d.Until.Before(f.Deadline) {
			t.Fatalf("until %s outside [08:00, 08:05)", d.Until.In(chicago))
		}
	}
}
