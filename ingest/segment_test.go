package ingest_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

var received = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// newParser returns a parser whose message ids count up: "gen-1", "gen-2"…
func newParser() *ingest.Parser {
	n := 0
	return &ingest.Parser{
		Contacts: &ingest.ContactNormalizer{DefaultRegion: "US"},
		NewID:    func() string { n++; return fmt.Sprintf("gen-%d", n) },
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseCall(t *testing.T) {
	tests := []struct {
		name string
		kind string
		body string
		want nudge.IngestItem
	}{
		{
			name: "track",
			kind: "track",
			body: `{"userId":"u1","event":"Order Completed","messageId":"m1",
				"properties":{"price":9.99,"quantity":2,"total":3.0,"currency":"USD","items":[{"sku":"a","n":1}],"big":12345678901234567890},
				"context":{"ip":"203.0.113.9","library":{"name":"analytics-go","version":"3"}},
				"integrations":{"All":false}}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "m1", Type: nudge.EventTrack, ContactID: "u1", Name: "Order Completed",
				Properties: map[string]any{"price": 9.99, "quantity": int64(2), "total": int64(3), "currency": "USD",
					"items": []any{map[string]any{"sku": "a", "n": int64(1)}}, "big": 12345678901234567890.0},
				Context:   map[string]any{"ip": "203.0.113.9", "library": map[string]any{"name": "analytics-go", "version": "3"}},
				Timestamp: received, ReceivedAt: received,
			}},
		},
		{
			name: "track with a numeric userId and no messageId",
			kind: "track",
			body: `{"userId":12345,"anonymousId":"anon-1","event":"Signed Up","type":"track"}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "gen-1", Type: nudge.EventTrack, ContactID: "12345", AnonymousID: "anon-1",
				Name: "Signed Up", Timestamp: received, ReceivedAt: received,
			}},
		},
		{
			name: "numeric userId in exponent form",
			kind: "track",
			body: `{"userId":1e3,"event":"x","messageId":"m"}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "m", Type: nudge.EventTrack, ContactID: "1000", Name: "x",
				Timestamp: received, ReceivedAt: received,
			}},
		},
		{
			name: "identify",
			kind: "identify",
			body: `{"userId":"u1","messageId":"m2","timestamp":"2024-02-29T08:00:00.5+01:00",
				"traits":{"email":"Jane@Example.COM","phone":"(415) 555-0123","timezone":"America/New_York",
				"lifecycleStage":"Marketing Qualified Lead","journey_stage":"onboarding","isCustomer":true,
				"plan":"pro","seats":10,"company":{"name":"Acme"},"old":null}}`,
			want: nudge.IngestItem{
				Event: &nudge.Event{
					MessageID: "m2", Type: nudge.EventIdentify, ContactID: "u1",
					Properties: map[string]any{"email": "Jane@Example.COM", "phone": "(415) 555-0123",
						"timezone": "America/New_York", "lifecycleStage": "Marketing Qualified Lead",
						"journey_stage": "onboarding", "isCustomer": true, "plan": "pro", "seats": int64(10),
						"company": map[string]any{"name": "Acme"}, "old": nil},
					Timestamp:  time.Date(2024, 2, 29, 7, 0, 0, 5e8, time.UTC),
					ReceivedAt: received,
				},
				Patch: &nudge.ContactPatch{
					ID: "u1", Email: ptr("Jane@example.com"), Phone: ptr("+14155550123"),
					Timezone: ptr("America/New_York"), LifecycleStage: ptr(nudge.StageMQL),
					JourneyStage: ptr("onboarding"), IsCustomer: ptr(true),
					Attributes: map[string]any{"plan": "pro", "seats": int64(10), "company": map[string]any{"name": "Acme"}, "old": nil},
				},
			},
		},
		{
			name: "identify without traits",
			kind: "identify",
			body: `{"userId":"u1","messageId":"m3"}`,
			want: nudge.IngestItem{
				Event: &nudge.Event{MessageID: "m3", Type: nudge.EventIdentify, ContactID: "u1", Timestamp: received, ReceivedAt: received},
				Patch: &nudge.ContactPatch{ID: "u1"},
			},
		},
		{
			name: "page",
			kind: "page",
			body: `{"userId":"u1","messageId":"m4","name":"Pricing","properties":{"url":"https://example.com/pricing"}}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "m4", Type: nudge.EventTrack, ContactID: "u1", Name: "page.viewed",
				Properties: map[string]any{"url": "https://example.com/pricing", "name": "Pricing"},
				Timestamp:  received, ReceivedAt: received,
			}},
		},
		{
			name: "screen",
			kind: "screen",
			body: `{"userId":"u1","messageId":"m5","name":"Home"}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "m5", Type: nudge.EventTrack, ContactID: "u1", Name: "screen.viewed",
				Properties: map[string]any{"name": "Home"}, Timestamp: received, ReceivedAt: received,
			}},
		},
		{
			name: "nulls are absent",
			kind: "track",
			body: `{"userId":"u1","event":"x","messageId":null,"properties":null,"context":null,"timestamp":null,"anonymousId":null}`,
			want: nudge.IngestItem{Event: &nudge.Event{
				MessageID: "gen-1", Type: nudge.EventTrack, ContactID: "u1", Name: "x",
				Timestamp: received, ReceivedAt: received,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newParser().ParseCall(tt.kind, []byte(tt.body), received)
			if err != nil {
				t.Fatalf("ParseCall: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCall (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCallErrors(t *testing.T) {
	tests := []struct {
		name string
		kind string
		body string
		want string // the error text
		code string // default EINVALID
	}{
		{"malformed JSON", "track", "{\"userId\":\"u1\",\n \"event\": }", `malformed JSON at line 2, column 11 (byte 26): invalid character '}' looking for beginning of value`, ""},
		{"truncated JSON", "track", `{"userId":"u1"`, `malformed JSON at line 1, column 15 (byte 14): unexpected end of JSON input`, ""},
		{"empty body", "track", "  ", `empty body: expected a JSON object`, ""},
		{"array body", "track", `[1]`, `expected a JSON object, got array`, ""},
		{"trailing data", "track", `{"userId":"u1"} {}`, `malformed JSON at line 1, column 17 (byte 16): invalid character '{' after top-level value`, ""},
		{"missing userId", "track", `{"event":"x"}`, `userId: required`, ""},
		{"empty userId", "track", `{"userId":"  ","event":"x"}`, `userId: required`, ""},
		{"anonymous only", "track", `{"anonymousId":"a1","event":"x"}`, `userId: required: calls with only an anonymousId are not supported yet`, ""},
		{"fractional userId", "track", `{"userId":12.5,"event":"x"}`, `userId: expected a string or an integer, got 12.5`, ""},
		{"boolean userId", "track", `{"userId":true,"event":"x"}`, `userId: expected string, got boolean`, ""},
		{"long userId", "track", `{"userId":"` + strings.Repeat("x", 256) + `","event":"x"}`, `userId: is 256 bytes; the limit is 255`, ""},
		{"control character in userId", "track", `{"userId":"a\u0000b","event":"x"}`, `userId: contains a control character`, ""},
		{"missing event", "track", `{"userId":"u1"}`, `event: required`, ""},
		{"event not a string", "track", `{"userId":"u1","event":5}`, `event: expected string, got number`, ""},
		{"price as string", "track", `{"userId":"u1","event":"x","properties":{"price":"9.99"}}`, `properties.price: expected number, got string`, ""},
		{"currency as number", "track", `{"userId":"u1","event":"x","properties":{"currency":978}}`, `properties.currency: expected string, got number`, ""},
		{"properties not an object", "track", `{"userId":"u1","event":"x","properties":[1]}`, `properties: expected object, got array`, ""},
		{"number out of range", "track", `{"userId":"u1","event":"x","properties":{"a":[1,1e999]}}`, `properties.a[1]: number 1e999 is out of range`, ""},
		{"context not an object", "track", `{"userId":"u1","event":"x","context":"web"}`, `context: expected object, got string`, ""},
		{"bad timestamp", "track", `{"userId":"u1","event":"x","timestamp":"yesterday"}`, `timestamp: not an RFC 3339 time`, ""},
		{"timestamp without zone", "track", `{"userId":"u1","event":"x","timestamp":"2024-03-01T10:00:00"}`, `timestamp: not an RFC 3339 time`, ""},
		{"numeric sentAt", "track", `{"userId":"u1","event":"x","sentAt":1709290000}`, `sentAt: expected string, got number`, ""},
		{"messageId not a string", "track", `{"userId":"u1","event":"x","messageId":7}`, `messageId: expected string, got number`, ""},
		{"traits not an object", "identify", `{"userId":"u1","traits":"x"}`, `traits: expected object, got string`, ""},
		{"bad phone trait", "identify", `{"userId":"u1","traits":{"phone":"12"}}`, `traits.phone: "12" is not a valid phone number for region US`, ""},
		{"bad email trait", "identify", `{"userId":"u1","traits":{"email":"jane"}}`, `traits.email: "jane" is not an email address`, ""},
		{"bad time zone trait", "identify", `{"userId":"u1","traits":{"timezone":"Mars/Olympus"}}`, `traits.timezone: "Mars/Olympus" is not an IANA time zone name (such as America/New_York)`, ""},
		{"both spellings", "identify", `{"userId":"u1","traits":{"isCustomer":true,"is_customer":false}}`, `traits.is_customer: both isCustomer and is_customer are given; give one`, ""},
		{"type disagrees", "track", `{"type":"identify","userId":"u1"}`, `type: "identify" does not match the track endpoint`, ""},
		{"group", "group", `{"userId":"u1","groupId":"g"}`, `type: group is not supported`, ""},
		{"alias", "alias", `{"userId":"u1","previousId":"a"}`, `type: alias is not supported`, ""},
		{"unknown kind", "batch", `{}`, `type: "batch" is not one of identify, track, page, screen`, ""},
		{"page name not a string", "page", `{"userId":"u1","name":1}`, `name: expected string, got number`, ""},
		{"too large", "track", `{"userId":"u1","event":"x","properties":{"s":"` + strings.Repeat("x", ingest.MaxCallBytes-48) + `"}}`,
			"event is 32769 bytes; the limit is 32768", nudge.ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newParser().ParseCall(tt.kind, []byte(tt.body), received)
			if err == nil {
				t.Fatal("ParseCall: no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			var e *nudge.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *nudge.Error", err)
			}
			if want := cmpOr(tt.code, nudge.EINVALID); e.Code != want {
				t.Errorf("code %q, want %q", e.Code, want)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSkewCorrection checks timestamp = receivedAt − (sentAt − originalTimestamp).
func TestSkewCorrection(t *testing.T) {
	tests := []struct {
		name                      string
		timestamp, original, sent string // "" leaves the field out
		want                      time.Time
	}{
		{"no times: received", "", "", "", received},
		{"sentAt alone: received", "", "", "2024-03-01T11:00:00Z", received},
		{"timestamp alone: as given", "2024-02-01T10:00:00Z", "", "", time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)},
		{"original alone: as given", "", "2024-02-01T10:00:00Z", "", time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)},
		// The client's clock is an hour fast: it says the event happened at
		// 13:00:00 and was sent 90 s later; the server got it at 12:00:00.
		{"timestamp and sentAt", "2024-03-01T13:00:00Z", "", "2024-03-01T13:01:30Z", received.Add(-90 * time.Second)},
		{"original and sentAt", "", "2024-03-01T13:00:00Z", "2024-03-01T13:01:30Z", received.Add(-90 * time.Second)},
		// originalTimestamp wins over timestamp for the correction.
		{"all three", "2020-01-01T00:00:00Z", "2024-03-01T13:00:00.250Z", "2024-03-01T13:00:01Z", received.Add(-750 * time.Millisecond)},
		// Offsets are honoured: 14:00+01:00 is 13:00Z.
		{"offsets", "", "2024-03-01T14:00:00+01:00", "2024-03-01T13:00:10Z", received.Add(-10 * time.Second)},
		{"offset without colon", "", "2024-03-01T14:00:00.000+0100", "2024-03-01T13:00:10.000+0000", received.Add(-10 * time.Second)},
		{"client clock slow", "", "2024-03-01T06:00:00Z", "2024-03-01T06:00:05Z", received.Add(-5 * time.Second)},
		{"timestamp and sentAt, no correction needed", "2024-03-01T11:59:59Z", "", "2024-03-01T12:00:00Z", received.Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"userId":"u1","event":"x","messageId":"m"`
			for _, f := range []struct{ k, v string }{{"timestamp", tt.timestamp}, {"originalTimestamp", tt.original}, {"sentAt", tt.sent}} {
				if f.v != "" {
					body += fmt.Sprintf(",%q:%q", f.k, f.v)
				}
			}
			body += "}"
			got, err := newParser().ParseCall("track", []byte(body), received)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Event.Timestamp.Equal(tt.want) || got.Event.Timestamp.Location() != time.UTC {
				t.Errorf("timestamp %v, want %v (UTC)", got.Event.Timestamp, tt.want)
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	big := `{"type":"track","userId":"u7","event":"big","properties":{"blob":"` + strings.Repeat("x", 40213-69) + `"}}`
	if len(big) != 40213 {
		t.Fatalf("test item is %d bytes", len(big))
	}
	body := `{
  "sentAt": "2024-03-01T13:00:10Z",
  "context": {"library": {"name": "analytics-node"}},
  "writeKey": "ignored",
  "batch": [
    {"type":"identify","userId":"u0","messageId":"m0","traits":{"email":"a@example.com"}},
    {"type":"track","userId":"u1","event":"Clicked","messageId":"m1","originalTimestamp":"2024-03-01T13:00:00Z"},
    {"type":"group","userId":"u2","groupId":"g"},
    {"type":"track","userId":"u3","event":"Bought","properties":{"price":"12.00"}},
    "not an object",
    {"type":"page","userId":"u5","messageId":"m5","context":{"page":{"path":"/"}},"sentAt":"2024-03-01T12:00:00Z","timestamp":"2024-03-01T11:59:00Z"},
    {"type":"track","event":"no user"},
    ` + big + `,
    {"userId":"u8","event":"no type"},
    {"type":"screen","userId":8}
  ]
}`
	items, err := newParser().ParseBatch([]byte(body), received)
	if err != nil {
		t.Fatalf("ParseBatch: %v", err)
	}
	lib := map[string]any{"library": map[string]any{"name": "analytics-node"}}
	wantErrs := map[int]struct{ msg, code string }{
		2: {"batch[2].type: group is not supported", nudge.EINVALID},
		3: {"batch[3].properties.price: expected number, got string", nudge.EINVALID},
		4: {"batch[4]: expected object, got string", nudge.EINVALID},
		6: {"batch[6].userId: required", nudge.EINVALID},
		7: {"batch[7]: event is 40213 bytes; the limit is 32768", nudge.ETOOLARGE},
		8: {"batch[8].type: required", nudge.EINVALID},
	}
	wantEvents := map[int]*nudge.Event{
		0: {MessageID: "m0", Type: nudge.EventIdentify, ContactID: "u0", Properties: map[string]any{"email": "a@example.com"},
			Context: lib, Timestamp: received, ReceivedAt: received},
		1: {MessageID: "m1", Type: nudge.EventTrack, ContactID: "u1", Name: "Clicked", Context: lib,
			Timestamp: received.Add(-10 * time.Second), ReceivedAt: received},
		5: {MessageID: "m5", Type: nudge.EventTrack, ContactID: "u5", Name: "page.viewed",
			Context: map[string]any{"page": map[string]any{"path": "/"}}, Timestamp: received.Add(-time.Minute), ReceivedAt: received},
		9: {MessageID: "gen-1", Type: nudge.EventTrack, ContactID: "8", Name: "screen.viewed", Context: lib,
			Timestamp: received, ReceivedAt: received},
	}
	if len(items) != 10 {
		t.Fatalf("%d items, want 10", len(items))
	}
	for i, it := range items {
		if it.Index != i {
			t.Errorf("items[%d].Index = %d", i, it.Index)
		}
		if w, ok := wantErrs[i]; ok {
			var e *nudge.Error
			if !errors.As(it.Err, &e) || it.Err.Error() != w.msg || e.Code != w.code {
				t.Errorf("items[%d].Err = %v, want %s (%s)", i, it.Err, w.msg, w.code)
			}
			if it.Item.Event != nil {
				t.Errorf("items[%d] has an error and an event", i)
			}
			continue
		}
		if it.Err != nil {
			t.Errorf("items[%d]: %v", i, it.Err)
			continue
		}
		if diff := cmp.Diff(wantEvents[i], it.Item.Event); diff != "" {
			t.Errorf("items[%d] (-want +got):\n%s", i, diff)
		}
	}
	if p := items[0].Item.Patch; p == nil || *p.Email != "a@example.com" {
		t.Errorf("items[0].Patch = %+v", p)
	}
}

func TestParseBatchErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"malformed", "{\"batch\": [\n  {\"userId\": \"u1\",}\n]}", `malformed JSON at line 2, column 19 (byte 30): invalid character '}' looking for beginning of object key string`},
		{"not an object", `[{"userId":"u1"}]`, `expected a JSON object, got array`},
		{"null", `null`, `expected a JSON object, got null`},
		{"empty", ``, `empty body: expected a JSON object`},
		{"no batch", `{"sentAt":"2024-03-01T12:00:00Z"}`, `batch: required`},
		{"batch not an array", `{"batch":{"userId":"u1"}}`, `batch: expected array, got object`},
		{"batch null", `{"batch":null}`, `batch: expected array, got null`},
		{"bad sentAt", `{"batch":[],"sentAt":"noon"}`, `sentAt: not an RFC 3339 time`},
		{"bad context", `{"batch":[],"context":[]}`, `context: expected object, got array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := newParser().ParseBatch([]byte(tt.body), received)
			if err == nil {
				t.Fatalf("no error; items %+v", items)
			}
			var e *nudge.Error
			if !errors.As(err, &e) || e.Code != nudge.EINVALID {
				t.Errorf("error %#v is not an EINVALID *nudge.Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	_, err := newParser().ParseBatch(make([]byte, ingest.MaxBatchBytes+1), received)
	if ingest.MaxBatchBytes != 500*1024 || nudge.ErrorCode(err) != nudge.ETOOLARGE {
		t.Errorf("oversize batch: %v", err)
	}
}

func TestParseBatchEmpty(t *testing.T) {
	items, err := newParser().ParseBatch([]byte(`{"batch":[]}`), received)
	if err != nil || len(items) != 0 {
		t.Errorf("ParseBatch = %v, %v; want no items", items, err)
	}
}

func TestDefaultMessageID(t *testing.T) {
	p := &ingest.Parser{}
	a, err := p.ParseCall("track", []byte(`{"userId":"u","event":"e"}`), received)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.ParseCall("track", []byte(`{"userId":"u","event":"e"}`), received)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a.Event.MessageID) || a.Event.MessageID == b.Event.MessageID {
		t.Errorf("message ids %q, %q: want two different 32-digit hex ids", a.Event.MessageID, b.Event.MessageID)
	}
}

func TestDecodeObject(t *testing.T) {
	got, err := ingest.DecodeObject([]byte(`{"a":1,"b":1.5,"c":[2],"d":{"e":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(1), "b": 1.5, "c": []any{int64(2)}, "d": map[string]any{"e": nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeObject (-want +got):\n%s", diff)
	}
	_, err = ingest.DecodeObject([]byte("{\n\"a\" 1}"))
	if want := `malformed JSON at line 2, column 5 (byte 6): invalid character '1' after object key`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
