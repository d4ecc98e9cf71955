package ingest

import (
	"encoding/json"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nudge/nudge"
	"github.com/nyaruka/phonenumbers"
)

// Limits on well-known contact values.
const (
	MaxIDBytes    = 255 // a contact id (userId, import id column)
	maxEmailBytes = 254 // RFC 5321's path limit
	maxZoneBytes  = 64
)

// ContactNormalizer validates and normalizes the well-known contact fields:
// phone numbers to E.164, time zones to IANA names, email addresses with a
// lower-cased domain. The zero value, like a nil *ContactNormalizer, accepts
// phone numbers only in +E.164 form.
type ContactNormalizer struct {
	// DefaultRegion is the CLDR region ("US", "GB") that numbers written
	// without a country code belong to; "" means numbers must be in +E.164.
	DefaultRegion string
}

func (n *ContactNormalizer) region() string {
	if n == nil {
		return ""
	}
	return strings.ToUpper(n.DefaultRegion)
}

// Phone returns s as an E.164 number ("+14155550123"). The empty string (after
// trimming) means no number and is returned as it is. A number that cannot be
// parsed, or is not a valid number, is an EINVALID error naming the value: it
// is never kept as written. Extensions are dropped; SMS cannot use them.
func (n *ContactNormalizer) Phone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	region := n.region()
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		if region == "" {
			return "", nudge.Errorf(nudge.EINVALID, "%q is not a valid phone number (write it in +E.164 form, such as +14155550123)", truncate(s, 40))
		}
		return "", nudge.Errorf(nudge.EINVALID, "%q is not a valid phone number for region %s", truncate(s, 40), region)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// zones caches the IANA names time.LoadLocation accepted: it reads and parses
// a file on every call, and an import checks a time zone per row. Only valid
// names are kept, so the cache is bounded by the zone database (about 600).
var zones sync.Map

// Timezone returns s, trimmed, if it is a valid IANA time zone name
// ("America/New_York", "UTC"). The empty string means no time zone and is
// returned as it is: callers that need one say so. "Local" is refused: it
// means the server's zone, not the contact's.
func (n *ContactNormalizer) Timezone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if _, ok := zones.Load(s); ok {
		return s, nil
	}
	if !validZoneName(s) {
		return "", nudge.Errorf(nudge.EINVALID, "%q is not an IANA time zone name (such as America/New_York)", truncate(s, 40))
	}
	if _, err := time.LoadLocation(s); err != nil {
		return "", nudge.Errorf(nudge.EINVALID, "%q is not an IANA time zone name (such as America/New_York)", truncate(s, 40))
	}
	zones.Store(s, struct{}{})
	return s, nil
}

// validZoneName checks the shape of an IANA name before the file system is
// asked about it: letters, digits, "_", "-", "+" and "/" separating
// non-empty parts. It keeps paths ("/etc/passwd", "../x") away from LoadLocation.
func validZoneName(s string) bool {
	if len(s) > maxZoneBytes || s == "Local" {
		return false
	}
	for part := range strings.SplitSeq(s, "/") {
		if part == "" || part[0] == '.' {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '+') {
				return false
			}
		}
	}
	return true
}

// Email returns s trimmed, with its domain lower-cased, if it is a bare
// email address ("jane@example.com", not "Jane <jane@example.com>") whose
// domain has a dot. The local part keeps its case: RFC 5321 lets it matter.
// The empty string means no address and is returned as it is.
func (n *ContactNormalizer) Email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := func() (string, error) {
		return "", nudge.Errorf(nudge.EINVALID, "%q is not an email address", truncate(s, 60))
	}
	if len(s) > maxEmailBytes {
		return bad()
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return bad()
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return bad()
	}
	local, domain := s[:at], s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") || strings.HasSuffix(domain, ".") {
		return bad()
	}
	return local + "@" + strings.ToLower(domain), nil
}

// checkID checks a contact id: not blank, at most MaxIDBytes, no control
// characters (ids end up in URLs, logs and CSV exports).
func checkID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return nudge.Errorf(nudge.EINVALID, "required")
	case len(id) > MaxIDBytes:
		return nudge.Errorf(nudge.EINVALID, "is %d bytes; the limit is %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return nudge.Errorf(nudge.EINVALID, "is not valid UTF-8")
	case strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nudge.Errorf(nudge.EINVALID, "contains a control character")
	}
	return nil
}

// normalizeStage maps the spellings CRMs use for the common lifecycle
// stages ("Marketing Qualified Lead", "MQL", "marketing_qualified_lead") to
// Nudge's constants; any other stage is kept as written, trimmed.
func normalizeStage(s string) string {
	s = strings.TrimSpace(s)
	key := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
	switch key {
	case "subscriber":
		return nudge.StageSubscriber
	case "lead":
		return nudge.StageLead
	case "marketingqualifiedlead", "mql":
		return nudge.StageMQL
	case "salesqualifiedlead", "sql":
		return nudge.StageSQL
	case "opportunity":
		return nudge.StageOpportunity
	case "customer":
		return nudge.StageCustomer
	}
	return s
}

// parseBool reads the yes/no spellings CRMs export.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1":
		return true, true
	case "false", "f", "no", "n", "0":
		return false, true
	}
	return false, false
}

// Well-known contact fields, as named in JSON and in import mappings.
const (
	fieldID             = "id"
	fieldEmail          = "email"
	fieldPhone          = "phone"
	fieldTimezone       = "timezone"
	fieldLifecycleStage = "lifecycle_stage"
	fieldJourneyStage   = "journey_stage"
	fieldIsCustomer     = "is_customer"
	fieldAttributes     = "attributes"
)

// wellKnown maps the keys Patch treats specially, Segment's camelCase
// spellings included, to their field.
var wellKnown = map[string]string{
	fieldID:             fieldID,
	fieldEmail:          fieldEmail,
	fieldPhone:          fieldPhone,
	fieldTimezone:       fieldTimezone,
	fieldLifecycleStage: fieldLifecycleStage,
	"lifecycleStage":    fieldLifecycleStage,
	fieldJourneyStage:   fieldJourneyStage,
	"journeyStage":      fieldJourneyStage,
	fieldIsCustomer:     fieldIsCustomer,
	"isCustomer":        fieldIsCustomer,
	fieldAttributes:     fieldAttributes,
}

// Patch builds the patch of contact id from a JSON object: identify traits,
// a PATCH body, a PUT body. Values may be json.Number (DecodeObject and the
// Segment parser convert them) or already int64/float64.
//
//   - email, phone, timezone, lifecycle_stage (lifecycleStage), journey_stage
//     (journeyStage) are strings, validated and normalized; null or "" clears
//     the field.
//   - is_customer (isCustomer) is a boolean; "true"/"false"/"yes"/"no" and
//     0/1 are accepted too, as CRMs send them; null sets it to false.
//   - id, if present, must equal id.
//   - attributes, if present, must be an object; its entries become
//     attributes and win over top-level keys of the same name.
//   - every other key is an attribute (nested objects and arrays are kept);
//     a null attribute is deleted.
//
// Errors are EINVALID *nudge.Error whose Field is the key as written
// ("phone", "isCustomer", "attributes.plan"). Keys are checked in sorted
// order and the first error is returned, so the same input always gives the
// same message; one error at a time keeps Field a single path that callers
// can prefix with nudge.WithField.
func (n *ContactNormalizer) Patch(id string, fields map[string]any) (*nudge.ContactPatch, error) {
	if err := checkID(id); err != nil {
		return nil, nudge.WithField(fieldID, err)
	}
	p := &nudge.ContactPatch{ID: id}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	seen := map[string]string{} // field → the key that set it
	var explicit map[string]any // the attributes object
	for _, k := range keys {
		v := fields[k]
		f, ok := wellKnown[k]
		if !ok {
			if k == "" {
				return nil, nudge.FieldErrorf(fieldAttributes, "an attribute name is empty")
			}
			c, err := convertValue(v, k)
			if err != nil {
				return nil, err
			}
			if p.Attributes == nil {
				p.Attributes = map[string]any{}
			}
			p.Attributes[k] = c
			continue
		}
		if prev, dup := seen[f]; dup {
			return nil, nudge.FieldErrorf(k, "both %s and %s are given; give one", prev, k)
		}
		seen[f] = k
		if err := n.setField(p, id, f, v, &explicit); err != nil {
			return nil, nudge.WithField(k, err)
		}
	}
	if len(explicit) > 0 && p.Attributes == nil {
		p.Attributes = make(map[string]any, len(explicit))
	}
	for k, v := range explicit {
		p.Attributes[k] = v
	}
	return p, nil
}

// setField sets one well-known field of p from a JSON value. Errors have no
// Field (the caller adds the key) unless they are inside attributes.
func (n *ContactNormalizer) setField(p *nudge.ContactPatch, id, f string, v any, explicit *map[string]any) error {
	switch f {
	case fieldID:
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			return typeError("", "string", v)
		}
		if s != id {
			return nudge.Errorf(nudge.EINVALID, "%q does not match the contact id %q", truncate(s, 40), truncate(id, 40))
		}
		return nil
	case fieldAttributes:
		m, ok := v.(map[string]any)
		if !ok {
			return typeError("", "object", v)
		}
		for k := range m {
			if k == "" {
				return nudge.Errorf(nudge.EINVALID, "an attribute name is empty")
			}
		}
		c, err := convertObject(m, "")
		if err != nil {
			return err
		}
		*explicit = c
		return nil
	case fieldIsCustomer:
		b := false
		switch v := v.(type) {
		case nil:
		case bool:
			b = v
		case string:
			var ok bool
			if b, ok = parseBool(v); !ok {
				return nudge.Errorf(nudge.EINVALID, "%q is not a yes/no value (use true or false)", truncate(v, 40))
			}
		case json.Number, int64, float64:
			switch zeroOne(v) {
			case "0":
			case "1":
				b = true
			default:
				return nudge.Errorf(nudge.EINVALID, "%v is not a yes/no value (use true or false)", v)
			}
		default:
			return typeError("", "boolean", v)
		}
		p.IsCustomer = &b
		return nil
	}

	var s string
	switch v := v.(type) {
	case nil:
	case string:
		s = v
	default:
		return typeError("", "string", v)
	}
	var err error
	switch f {
	case fieldEmail:
		s, err = n.Email(s)
		p.Email = &s
	case fieldPhone:
		s, err = n.Phone(s)
		p.Phone = &s
	case fieldTimezone:
		s, err = n.Timezone(s)
		p.Timezone = &s
	case fieldLifecycleStage:
		s = normalizeStage(s)
		p.LifecycleStage = &s
	case fieldJourneyStage:
		s = strings.TrimSpace(s)
		p.JourneyStage = &s
	}
	return err
}

// zeroOne returns "0" or "1" for a number value equal to them, else "".
func zeroOne(v any) string {
	switch v := v.(type) {
	case json.Number:
		c, err := convertNumber(v, "")
		if err != nil {
			return ""
		}
		return zeroOne(c)
	case int64:
		switch v {
		case 0:
			return "0"
		case 1:
			return "1"
		}
	case float64:
		switch v {
		case 0:
			return "0"
		case 1:
			return "1"
		}
	}
	return ""
}

// Contact builds a whole contact from a JSON object, for PUT (replacement):
// the same keys and rules as Patch, and whatever the object does not give is
// empty.
func (n *ContactNormalizer) Contact(id string, fields map[string]any) (*nudge.Contact, error) {
	p, err := n.Patch(id, fields)
	if err != nil {
		return nil, err
	}
	c := &nudge.Contact{ID: id, Attributes: map[string]any{}}
	p.Apply(c)
	return c, nil
}
