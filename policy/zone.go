package policy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Where a contact's time zone came from.
const (
	ZoneFromContact = "contact" // the contact's timezone field
	ZoneFromPhone   = "phone"   // the phone number's prefix (libphonenumber)
	ZoneFromDefault = "default" // the workspace default
)

// Zones is where a contact is in time: every candidate zone (a send must be
// allowed in each), where they came from, and the region the phone number
// places the contact in for regional rules.
type Zones struct {
	Names  []string // IANA names; Names[0] is the primary zone (calendar days)
	Source string   // ZoneFromContact, ZoneFromPhone or ZoneFromDefault
	Prefix string   // the phone prefix the zones or region came from: "+1 312"
	Region string   // "US-FL", "FR", or "" when unknown
	// Problem says why a better source was passed over ("timezone
	// \"Mars/Base\" is unknown").
	Problem string

	locs []*time.Location
}

// Locate finds a contact's zones: its timezone when valid; else the zones
// libphonenumber gives for its phone number's prefix; else the workspace
// default. The region comes from the phone number either way: a Florida
// area code is presumed a Florida resident.
func (p *Policy) Locate(timezone, phone string) Zones {
	var z Zones
	ph := phoneInfoFor(phone)
	if ph != nil {
		z.Region, z.Prefix = ph.region, ph.prefix
	}
	if timezone != "" {
		if one := zone(timezone); one != nil {
			z.Names, z.locs, z.Source = one.names, one.locs, ZoneFromContact
			return z
		}
		z.Problem = "timezone \"" + timezone + "\" is unknown"
	}
	if ph != nil && len(ph.locs) > 0 {
		z.Names, z.locs, z.Source = ph.zones, ph.locs, ZoneFromPhone
		return z
	}
	one := zone(p.Timezone)
	if one == nil {
		one = zone("UTC")
	}
	z.Names, z.locs, z.Source = one.names, one.locs, ZoneFromDefault
	return z
}

// Describe says where the zones came from, for sentences: "zone from phone
// +1 312", "zones from phone +1 208".
func (z Zones) Describe() string {
	switch z.Source {
	case ZoneFromContact:
		return "zone from contact"
	case ZoneFromPhone:
		if len(z.Names) > 1 {
			return "zones " + strings.Join(z.Names, ", ") + " from phone " + z.Prefix
		}
		return "zone from phone " + z.Prefix
	}
	s := "workspace default zone"
	if z.Problem != "" {
		s += "; " + z.Problem
	}
	return s
}

// oneZone is a zone as Zones holds it, made once per name so that Locate
// does not allocate.
type oneZone struct {
	names []string
	locs  []*time.Location
}

var locations sync.Map // IANA name → *oneZone, or nil when unknown

// zone loads a zone once: time.LoadLocation reads the zone database.
func zone(name string) *oneZone {
	if v, ok := locations.Load(name); ok {
		return v.(*oneZone)
	}
	var z *oneZone
	if loc, err := time.LoadLocation(name); err == nil && name != "" && name != "Local" {
		z = &oneZone{names: []string{name}, locs: []*time.Location{loc}}
	}
	locations.Store(name, z)
	return z
}

// location returns the zone's location, or nil when the name is unknown.
func location(name string) *time.Location {
	if z := zone(name); z != nil {
		return z.locs[0]
	}
	return nil
}

type phoneInfo struct {
	zones  []string
	locs   []*time.Location
	region string
	prefix string
}

// phoneCache memoizes phoneInfoFor by number; it is dropped whole when it
// grows past phoneCacheMax, which keeps it bounded without bookkeeping.
// What it saves is the second and later look-ups of one number close
// together (a batch's guardrails, then the dispatch re-check), so it need
// not hold every contact: at about 250 bytes a number, 20,000 numbers are
// 5 MB. (At 100,000 it held 25 MB, and an hour's soak of new contacts saw
// the server's live heap climb by that much before the first drop.)
var (
	phoneCache    atomic.Pointer[sync.Map]
	phoneCacheLen atomic.Int64
)

const phoneCacheMax = 20_000

// phoneInfoFor reads an E.164 number's zones and region, or nil when it is
// not an E.164 number.
func phoneInfoFor(phone string) *phoneInfo {
	if len(phone) < 3 || phone[0] != '+' {
		return nil
	}
	m := phoneCache.Load()
	if m == nil {
		phoneCache.CompareAndSwap(nil, &sync.Map{})
		m = phoneCache.Load()
	}
	if v, ok := m.Load(phone); ok {
		return v.(*phoneInfo)
	}
	info := lookupPhone(phone)
	if phoneCacheLen.Add(1) > phoneCacheMax {
		phoneCacheLen.Store(0)
		phoneCache.Store(&sync.Map{})
		return info
	}
	m.Store(phone, info)
	return info
}

func lookupPhone(phone string) *phoneInfo {
	digits := phone[1:]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil
		}
	}
	info := &phoneInfo{}
	// The number is E.164 already, so its prefix is what
	// GetTimezonesForNumber would look up after formatting it.
	if tzs, err := phonenumbers.GetTimezonesForPrefix(phone); err == nil {
		for _, tz := range tzs {
			if tz == phonenumbers.UNKNOWN_TIMEZONE {
				continue
			}
			if loc := location(tz); loc != nil {
				info.zones = append(info.zones, tz)
				info.locs = append(info.locs, loc)
			}
		}
	}
	if digits[0] == '1' && len(digits) >= 4 {
		info.prefix = "+1 " + digits[1:4]
		info.region = nanpRegions[digits[1:4]]
		return info
	}
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc, _ := strconv.Atoi(digits[:n])
		if r := phonenumbers.GetRegionCodeForCountryCode(cc); r != "" && r != phonenumbers.UNKNOWN_REGION {
			info.prefix = "+" + digits[:n]
			info.region = r
			break
		}
	}
	return info
}

// nanpRegions maps the area codes of the states with their own SMS rules to
// the state: a number with such an area code is presumed to be a resident
// (Florida's FTSA says so in so many words). The codes are from the NANPA
// area code list by state (nationalnanpa.com, "Area Codes by State"),
// overlays included; TestNANPRegionsAgreeWithGeocoder checks them against
// libphonenumber's geocoding. Codes of other states are not listed: they
// have no rule beyond the TCPA's.
var nanpRegions = func() map[string]string {
	m := map[string]string{}
	for state, codes := range map[string]string{
		"US-FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954",
		"US-OK": "405 539 572 580 918",
		"US-MD": "227 240 301 410 443 667",
		"US-AL": "205 251 256 334 483 659 938",
		"US-LA": "225 318 337 457 504 985",
		"US-MS": "228 601 662 769",
		"US-MA": "339 351 413 508 617 774 781 857 978",
		"US-KY": "270 364 502 606 859",
		"US-MI": "231 248 269 313 517 586 616 679 734 810 906 947 989",
		"US-MN": "218 320 507 612 651 763 924 952",
		"US-NM": "505 575",
		"US-NV": "702 725 775",
		"US-RI": "401",
	} {
		for _, c := range strings.Fields(codes) {
			m[c] = state
		}
	}
	return m
}()
