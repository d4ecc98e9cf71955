package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// Limits of Segment's HTTP tracking API. The HTTP layer enforces the body
// limits before reading; the parser checks them again so that it never works
// on more than they allow.
const (
	MaxCallBytes      = 32 << 10  // one identify/track/page/screen call
	MaxBatchBytes     = 500 << 10 // one batch call
	MaxBatchItemBytes = 32 << 10  // one event inside a batch
)

// Event names that page and screen calls become.
const (
	EventPageViewed   = "page.viewed"
	EventScreenViewed = "screen.viewed"
)

// Segment call types.
const (
	callIdentify = "identify"
	callTrack    = "track"
	callPage     = "page"
	callScreen   = "screen"
)

// Properties Segment's spec reserves, with the types it gives them.
var (
	numberProperties = []string{"revenue", "value", "price", "quantity", "total", "subtotal", "tax", "shipping", "discount"}
	stringProperties = []string{"currency", "product_id", "sku", "order_id"}
)

// Parser turns Segment HTTP tracking API calls into ingest items. It is pure:
// the receive time is an argument, and the only other input is NewID.
type Parser struct {
	// Contacts normalizes identify traits; nil means a zero ContactNormalizer
	// (phone numbers only in +E.164).
	Contacts *ContactNormalizer
	// NewID makes a messageId for a call that has none; nil means 16
	// random bytes in hex.
	NewID func() string
}

// BatchItem is one event of a batch call, in the batch's order: Item when it
// is valid, else Err (a *nudge.Error whose Field starts with "batch[Index]").
type BatchItem struct {
	Index int
	Item  nudge.IngestItem
	Err   error
}

func (p *Parser) newID() string {
	if p.NewID != nil {
		return p.NewID()
	}
	var b [16]byte
	rand.Read(b[:]) // never fails; it crashes the program if the OS cannot supply randomness
	return hex.EncodeToString(b[:])
}

// batchDefaults are the batch-level fields that apply to the items that lack
// them, as Segment applies them.
type batchDefaults struct {
	sentAt  *time.Time
	context map[string]any
}

// ParseCall parses one call sent to /v1/identify, /v1/track, /v1/page or
// /v1/screen; kind is the last path element. A "type" in the body, if any,
// must agree with kind. Errors are *nudge.Error: EINVALID with Field the JSON
// path of the offending value (or a position for malformed JSON), ETOOLARGE
// for a body over MaxCallBytes.
func (p *Parser) ParseCall(kind string, body []byte, receivedAt time.Time) (nudge.IngestItem, error) {
	if err := checkKind(kind); err != nil {
		return nudge.IngestItem{}, err
	}
	if len(body) > MaxCallBytes {
		return nudge.IngestItem{}, nudge.Errorf(nudge.ETOOLARGE, "event is %d bytes; the limit is %d", len(body), MaxCallBytes)
	}
	m, err := decodeObject(body)
	if err != nil {
		return nudge.IngestItem{}, err
	}
	return p.parseItem(kind, m, batchDefaults{}, receivedAt)
}

// ParseBatch parses a call to /v1/batch. A problem with the body as a whole
// (over MaxBatchBytes, malformed JSON, no "batch" array, a bad top-level
// sentAt or context) is the error; otherwise every element of the batch
// gives one BatchItem, valid or carrying its own error, so that one bad
// event never costs the others. The top-level sentAt and context apply to
// the items that lack them.
func (p *Parser) ParseBatch(body []byte, receivedAt time.Time) (items []BatchItem, err error) {
	if len(body) > MaxBatchBytes {
		return nil, nudge.Errorf(nudge.ETOOLARGE, "batch is %d bytes; the limit is %d", len(body), MaxBatchBytes)
	}
	if err := checkTopObject(body); err != nil {
		return nil, err
	}
	top := map[string][]byte{}
	objectMembers(body, func(key string, raw []byte) {
		switch key {
		case "batch", "sentAt", "context":
			top[key] = raw
		}
	})
	rawBatch, ok := top["batch"]
	if !ok {
		return nil, nudge.FieldErrorf("batch", "required")
	}
	if k := rawKind(rawBatch); k != "array" {
		return nil, nudge.FieldErrorf("batch", "expected array, got %s", k)
	}
	raws := arrayElements(rawBatch)

	var d batchDefaults
	if raw, ok := top["sentAt"]; ok {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, jsonError(raw, err)
		}
		if d.sentAt, err = parseTime("sentAt", v); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["context"]; ok {
		switch k := rawKind(raw); k {
		case "null":
		case "object":
			if d.context, err = decodeValid(raw); err != nil {
				return nil, err
			}
			if _, err := convertInPlace(d.context, "context"); err != nil {
				return nil, err
			}
		default:
			return nil, nudge.FieldErrorf("context", "expected object, got %s", k)
		}
	}

	items = make([]BatchItem, len(raws))
	for i, raw := range raws {
		items[i].Index = i
		prefix := "batch[" + strconv.Itoa(i) + "]"
		if len(raw) > MaxBatchItemBytes {
			items[i].Err = &nudge.Error{Code: nudge.ETOOLARGE, Field: prefix,
				Message: "event is " + strconv.Itoa(len(raw)) + " bytes; the limit is " + strconv.Itoa(MaxBatchItemBytes)}
			continue
		}
		if k := rawKind(raw); k != "object" {
			items[i].Err = nudge.FieldErrorf(prefix, "expected object, got %s", k)
			continue
		}
		m, err := decodeValid(raw)
		if err == nil {
			items[i].Item, err = p.parseItem("", m, d, receivedAt)
		}
		if err != nil {
			items[i].Err = nudge.WithField(prefix, err)
		}
	}
	return items, nil
}

// checkKind accepts the call types Nudge handles and says so for the others.
func checkKind(kind string) error {
	switch kind {
	case callIdentify, callTrack, callPage, callScreen:
		return nil
	case "group", "alias":
		return nudge.FieldErrorf("type", "%s is not supported", kind)
	case "":
		return nudge.FieldErrorf("type", "required")
	}
	return nudge.FieldErrorf("type", "%q is not one of identify, track, page, screen", truncate(kind, 40))
}

// parseItem turns one decoded call into an ingest item. kind is the call
// type given by the endpoint, or "" in a batch, where the item's "type" says.
// Errors have Field relative to the call.
func (p *Parser) parseItem(kind string, m map[string]any, d batchDefaults, receivedAt time.Time) (nudge.IngestItem, error) {
	var none nudge.IngestItem
	typ := kind
	if v, ok := m["type"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return none, typeError("type", "string", v)
		}
		switch {
		case kind == "":
			typ = s
		case s != kind:
			return none, nudge.FieldErrorf("type", "%q does not match the %s endpoint", truncate(s, 40), kind)
		}
	}
	if err := checkKind(typ); err != nil {
		return none, err
	}

	userID, err := idString(m, "userId")
	if err != nil {
		return none, err
	}
	anonID, err := idString(m, "anonymousId")
	if err != nil {
		return none, err
	}
	if strings.TrimSpace(userID) == "" {
		if anonID != "" {
			return none, nudge.FieldErrorf("userId", "required: calls with only an anonymousId are not supported yet")
		}
		return none, nudge.FieldErrorf("userId", "required")
	}
	if err := checkID(userID); err != nil {
		return none, nudge.WithField("userId", err)
	}
	if anonID != "" {
		if err := checkID(anonID); err != nil {
			return none, nudge.WithField("anonymousId", err)
		}
	}

	messageID, err := optString(m, "messageId")
	if err != nil {
		return none, err
	}
	if messageID != "" {
		if err := checkID(messageID); err != nil {
			return none, nudge.WithField("messageId", err)
		}
	}

	ts, err := parseTime("timestamp", m["timestamp"])
	if err != nil {
		return none, err
	}
	ots, err := parseTime("originalTimestamp", m["originalTimestamp"])
	if err != nil {
		return none, err
	}
	sentAt, err := parseTime("sentAt", m["sentAt"])
	if err != nil {
		return none, err
	}
	if sentAt == nil {
		sentAt = d.sentAt
	}

	var ctxm map[string]any
	if v := m["context"]; v != nil {
		if ctxm, err = optObject("context", v); err != nil {
			return none, err
		}
	} else if d.context != nil {
		// A copy per item: events must not share maps.
		if ctxm, err = convertObject(d.context, "context"); err != nil {
			return none, err
		}
	}

	ev := &nudge.Event{
		MessageID:   messageID,
		ContactID:   userID,
		AnonymousID: anonID,
		Context:     ctxm,
		Timestamp:   eventTime(ts, ots, sentAt, receivedAt),
		ReceivedAt:  receivedAt.UTC(),
	}
	item := nudge.IngestItem{Event: ev}

	switch typ {
	case callIdentify:
		ev.Type = nudge.EventIdentify
		raw, ok := m["traits"].(map[string]any)
		if !ok && m["traits"] != nil {
			return none, typeError("traits", "object", m["traits"])
		}
		// Patch copies what it keeps, so the traits can then be converted in place.
		if item.Patch, err = p.Contacts.Patch(userID, raw); err != nil {
			return none, nudge.WithField("traits", err)
		}
		if _, err = convertInPlace(raw, "traits"); err != nil {
			return none, err
		}
		ev.Properties = raw
	case callTrack:
		ev.Type = nudge.EventTrack
		name, err := optString(m, "event")
		if err != nil {
			return none, err
		}
		if err := checkID(name); err != nil {
			return none, nudge.WithField("event", err)
		}
		ev.Name = name
		if ev.Properties, err = properties(m); err != nil {
			return none, err
		}
	case callPage, callScreen:
		ev.Type = nudge.EventTrack
		ev.Name = EventPageViewed
		if typ == callScreen {
			ev.Name = EventScreenViewed
		}
		if ev.Properties, err = properties(m); err != nil {
			return none, err
		}
		name, err := optString(m, "name")
		if err != nil {
			return none, err
		}
		if name != "" {
			if ev.Properties == nil {
				ev.Properties = map[string]any{}
			}
			ev.Properties["name"] = name
		}
	}
	if ev.MessageID == "" {
		ev.MessageID = p.newID() // only for valid calls: ids are not spent on errors
	}
	return item, nil
}

// eventTime applies Segment's clock-skew correction. A client's clock may be
// wrong, but the time between the event and the request that carried it
// (sentAt − originalTimestamp, both on the client's clock) is right, so it
// is measured back from the server's receive time:
//
//	timestamp = receivedAt − (sentAt − originalTimestamp)
//
// with the call's timestamp standing in for originalTimestamp when that is
// absent. Without sentAt there is nothing to correct with: timestamp (else
// originalTimestamp) is taken as given, as for a historical import. With no
// time at all, the event happened when it was received.
func eventTime(ts, ots, sentAt *time.Time, receivedAt time.Time) time.Time {
	orig := ots
	if orig == nil {
		orig = ts
	}
	switch {
	case orig == nil:
		return receivedAt.UTC()
	case sentAt != nil:
		return receivedAt.Add(-sentAt.Sub(*orig)).UTC()
	case ts != nil:
		return ts.UTC()
	}
	return orig.UTC()
}

// properties returns the call's properties with the reserved ones checked.
func properties(m map[string]any) (map[string]any, error) {
	v := m["properties"]
	props, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, typeError("properties", "object", v)
	}
	for _, k := range numberProperties {
		if x, ok := props[k]; ok && x != nil {
			if kind(x) != "number" {
				return nil, typeError("properties."+k, "number", x)
			}
		}
	}
	for _, k := range stringProperties {
		if x, ok := props[k]; ok && x != nil {
			if _, ok := x.(string); !ok {
				return nil, typeError("properties."+k, "string", x)
			}
		}
	}
	if _, err := convertInPlace(props, "properties"); err != nil {
		return nil, err
	}
	return props, nil
}

// timeLayouts are the RFC 3339 / ISO 8601 forms Segment libraries send.
// Fractional seconds are accepted by time.Parse without being in the layout.
var timeLayouts = []string{
	time.RFC3339,               // 2024-03-01T09:30:00.123Z, …+01:00
	"2006-01-02T15:04:05Z0700", // …+0100 (no colon in the offset)
	"2006-01-02T15:04:05Z07",   // …+01
}

// parseTime reads an optional time field; nil means absent.
func parseTime(field string, v any) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, typeError(field, "string", v)
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return &t, nil
		}
	}
	return nil, nudge.FieldErrorf(field, "not an RFC 3339 time")
}

// idString reads an id field: a string, or a JSON integer (Segment libraries
// send numeric user ids) converted to its decimal text, every digit kept.
// Absent or null is "".
func idString(m map[string]any, field string) (string, error) {
	switch v := m[field].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return "", nudge.FieldErrorf(field, "expected a string or an integer, got %s", strconv.FormatFloat(v, 'g', -1, 64))
	case json.Number:
		s := v.String()
		if isDigits(strings.TrimPrefix(s, "-")) {
			return s, nil // any length: an id, not a quantity
		}
		c, err := convertNumber(v, field)
		if err != nil {
			return "", err
		}
		if i, ok := c.(int64); ok {
			return strconv.FormatInt(i, 10), nil
		}
		return "", nudge.FieldErrorf(field, "expected a string or an integer, got %s", truncate(s, 40))
	default:
		return "", typeError(field, "string", v)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// optString reads an optional string field; absent or null is "".
func optString(m map[string]any, field string) (string, error) {
	switch v := m[field].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", typeError(field, "string", v)
	}
}

// optObject checks and converts, in place, an optional object; nil stays nil.
func optObject(field string, v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, typeError(field, "object", v)
	}
	if _, err := convertInPlace(o, field); err != nil {
		return nil, err
	}
	return o, nil
}
