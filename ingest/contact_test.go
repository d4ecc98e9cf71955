package ingest_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// checkNorm runs one normalizer case: want is the result, or the error text
// when wantErr is set.
func checkNorm(t *testing.T, f func(string) (string, error), in, want string, wantErr bool) {
	t.Helper()
	got, err := f(in)
	switch {
	case wantErr && err == nil:
		t.Errorf("(%q) = %q, want error %s", in, got, want)
	case wantErr && err.Error() != want:
		t.Errorf("(%q) error\n got %v\nwant %s", in, err, want)
	case wantErr:
		var e *nudge.Error
		if !errors.As(err, &e) || e.Code != nudge.EINVALID {
			t.Errorf("(%q) error %#v is not an EINVALID *nudge.Error", in, err)
		}
	case err != nil:
		t.Errorf("(%q): %v", in, err)
	case got != want:
		t.Errorf("(%q) = %q, want %q", in, got, want)
	}
}

func TestPhone(t *testing.T) {
	us := &ingest.ContactNormalizer{DefaultRegion: "US"}
	var e164 *ingest.ContactNormalizer // nil: +E.164 only
	tests := []struct {
		name    string
		n       *ingest.ContactNormalizer
		in      string
		want    string
		wantErr bool
	}{
		{"national", us, "(415) 555-0123", "+14155550123", false},
		{"dots", us, "415.555.0123", "+14155550123", false},
		{"with country code", us, "+1 415 555 0123", "+14155550123", false},
		{"other country", us, "+44 20 7946 0958", "+442079460958", false},
		{"extension dropped", us, "415-555-0123 ext. 12", "+14155550123", false},
		{"empty", us, "  ", "", false},
		{"too short", us, "12", `"12" is not a valid phone number for region US`, true},
		{"letters", us, "call me", `"call me" is not a valid phone number for region US`, true},
		{"invalid area code", us, "(099) 555-0123", `"(099) 555-0123" is not a valid phone number for region US`, true},
		{"no region: E.164", e164, "+14155550123", "+14155550123", false},
		{"no region: national", e164, "4155550123", `"4155550123" is not a valid phone number (write it in +E.164 form, such as +14155550123)`, true},
		{"lower-case region", &ingest.ContactNormalizer{DefaultRegion: "gb"}, "020 7946 0958", "+442079460958", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkNorm(t, tt.n.Phone, tt.in, tt.want, tt.wantErr) })
	}
}

func TestTimezone(t *testing.T) {
	n := &ingest.ContactNormalizer{}
	bad := func(s string) string { return `"` + s + `" is not an IANA time zone name (such as America/New_York)` }
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"America/New_York", "America/New_York", false},
		{" Europe/Paris ", "Europe/Paris", false},
		{"America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires", false},
		{"UTC", "UTC", false},
		{"Etc/GMT+5", "Etc/GMT+5", false},
		{"", "", false},
		{"Local", bad("Local"), true},
		{"Mars/Olympus", bad("Mars/Olympus"), true},
		{"EST5EDT ", "EST5EDT", false},
		{"../../etc/passwd", bad("../../etc/passwd"), true},
		{"/etc/localtime", bad("/etc/localtime"), true},
		{"America//New_York", bad("America//New_York"), true},
		{"+05:00", bad("+05:00"), true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) { checkNorm(t, n.Timezone, tt.in, tt.want, tt.wantErr) })
		// A second time, through the cache.
		t.Run(tt.in+" again", func(t *testing.T) { checkNorm(t, n.Timezone, tt.in, tt.want, tt.wantErr) })
	}
}

func TestEmail(t *testing.T) {
	n := &ingest.ContactNormalizer{}
	bad := func(s string) string { return `"` + s + `" is not an email address` }
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"jane@example.com", "jane@example.com", false},
		{"  Jane.Doe+promo@Example.COM ", "Jane.Doe+promo@example.com", false},
		{"", "", false},
		{"jane", bad("jane"), true},
		{"jane@", bad("jane@"), true},
		{"@example.com", bad("@example.com"), true},
		{"Jane <jane@example.com>", bad("Jane <jane@example.com>"), true},
		{"jane@localhost", bad("jane@localhost"), true},
		{"jane@[192.0.2.1]", bad("jane@[192.0.2.1]"), true},
		{"jane@example.com.", bad("jane@example.com."), true},
		{"a@b@example.com", bad("a@b@example.com"), true},
		{"jane doe@example.com", bad("jane doe@example.com"), true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) { checkNorm(t, n.Email, tt.in, tt.want, tt.wantErr) })
	}
}

func TestPatch(t *testing.T) {
	n := &ingest.ContactNormalizer{DefaultRegion: "US"}
	tests := []struct {
		name    string
		id      string
		fields  map[string]any
		want    *nudge.ContactPatch
		wantErr string
	}{
		{
			name: "well-known and attributes",
			id:   "c1",
			fields: map[string]any{
				"email": "a@Example.com", "phone": "415 555 0123", "timezone": "Europe/Paris",
				"lifecycle_stage": "SQL", "journeyStage": " trial ", "is_customer": "yes",
				"plan": "pro", "score": int64(7), "tags": []any{"a"}, "gone": nil,
				"attributes": map[string]any{"plan": "enterprise", "owner": map[string]any{"name": "Sam"}},
				"id":         "c1",
			},
			want: &nudge.ContactPatch{
				ID: "c1", Email: ptr("a@example.com"), Phone: ptr("+14155550123"), Timezone: ptr("Europe/Paris"),
				LifecycleStage: ptr(nudge.StageSQL), JourneyStage: ptr("trial"), IsCustomer: ptr(true),
				Attributes: map[string]any{"plan": "enterprise", "score": int64(7), "tags": []any{"a"}, "gone": nil,
					"owner": map[string]any{"name": "Sam"}},
			},
		},
		{
			name:   "nulls clear well-known fields",
			id:     "c1",
			fields: map[string]any{"email": nil, "phone": nil, "timezone": "", "lifecycleStage": nil, "isCustomer": nil},
			want: &nudge.ContactPatch{ID: "c1", Email: ptr(""), Phone: ptr(""), Timezone: ptr(""),
				LifecycleStage: ptr(""), IsCustomer: ptr(false)},
		},
		{
			name:   "unknown lifecycle stage kept",
			id:     "c1",
			fields: map[string]any{"lifecycle_stage": " Evangelist ", "is_customer": int64(0)},
			want:   &nudge.ContactPatch{ID: "c1", LifecycleStage: ptr("Evangelist"), IsCustomer: ptr(false)},
		},
		{name: "empty", id: "c1", want: &nudge.ContactPatch{ID: "c1"}},
		{name: "no id", id: " ", wantErr: "id: required"},
		{name: "id mismatch", id: "c1", fields: map[string]any{"id": "c2"}, wantErr: `id: "c2" does not match the contact id "c1"`},
		{name: "bad phone", id: "c1", fields: map[string]any{"phone": "12"}, wantErr: `phone: "12" is not a valid phone number for region US`},
		{name: "phone as number", id: "c1", fields: map[string]any{"phone": int64(4155550123)}, wantErr: `phone: expected string, got number`},
		{name: "bad bool", id: "c1", fields: map[string]any{"is_customer": "maybe"}, wantErr: `is_customer: "maybe" is not a yes/no value (use true or false)`},
		{name: "bool as object", id: "c1", fields: map[string]any{"isCustomer": map[string]any{}}, wantErr: `isCustomer: expected boolean, got object`},
		{name: "attributes not an object", id: "c1", fields: map[string]any{"attributes": "x"}, wantErr: `attributes: expected object, got string`},
		{name: "empty attribute name", id: "c1", fields: map[string]any{"": 1}, wantErr: `attributes: an attribute name is empty`},
		{
			name:    "first error in key order",
			id:      "c1",
			fields:  map[string]any{"timezone": "Nowhere", "email": "x", "phone": "1"},
			wantErr: `email: "x" is not an email address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := n.Patch(tt.id, tt.fields)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				var e *nudge.Error
				if !errors.As(err, &e) || e.Code != nudge.EINVALID {
					t.Errorf("error %#v is not an EINVALID *nudge.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Patch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContact(t *testing.T) {
	n := &ingest.ContactNormalizer{DefaultRegion: "US"}
	fields, err := ingest.DecodeObject([]byte(`{"email":"a@example.com","is_customer":true,"seats":3,"gone":null}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.Contact("c1", fields)
	if err != nil {
		t.Fatal(err)
	}
	want := &nudge.Contact{ID: "c1", Email: "a@example.com", IsCustomer: true, Attributes: map[string]any{"seats": int64(3)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Contact (-want +got):\n%s", diff)
	}
	if _, err := n.Contact("c1", map[string]any{"phone": "12"}); err == nil {
		t.Error("Contact with a bad phone: no error")
	}
}
