package ingest_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

var us = &ingest.ContactNormalizer{DefaultRegion: "US"}

// readAll reads every row, failing the test on a reader error.
func readAll(t *testing.T, r *ingest.CSVReader) []ingest.Row {
	t.Helper()
	var rows []ingest.Row
	for {
		row, err := r.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		rows = append(rows, row)
	}
}

// rowErrors returns the error texts of rows, "" for good rows.
func rowErrors(rows []ingest.Row) []string {
	var out []string
	for _, r := range rows {
		if r.Err != nil {
			out = append(out, r.Err.Error())
		} else {
			out = append(out, "")
		}
	}
	return out
}

func TestCSVReader(t *testing.T) {
	in := "\uFEFFContact ID,Email Address,Phone Number,time_zone,Lifecycle Stage,Journey Stage,Is Customer,SMS Opt In,email_consent,Company Size,Notes\r\n" +
		"c1,Jane@Example.com,(415) 555-0123,America/New_York,MQL,trial,yes,yes,subscribed,50-100,\"likes \"\"quotes\"\"\"\r\n" +
		"c2,,,,,,,,,,\r\n" +
		"c3,bob@example.com,,,customer,,false,no,unknown,,\r\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	wantMapping := ingest.Mapping{
		"Contact ID": "id", "Email Address": "email", "Phone Number": "phone", "time_zone": "timezone",
		"Lifecycle Stage": "lifecycle_stage", "Journey Stage": "journey_stage", "Is Customer": "is_customer",
		"SMS Opt In": "sms_consent", "email_consent": "email_consent",
		"Company Size": "attributes.company_size", "Notes": "attributes.notes",
	}
	if diff := cmp.Diff(wantMapping, r.Mapping()); diff != "" {
		t.Errorf("Mapping (-want +got):\n%s", diff)
	}
	if h := r.Header(); h[0] != "Contact ID" {
		t.Errorf("header[0] = %q: the BOM was not stripped", h[0])
	}
	consent := func(id, ch, status string) *nudge.ConsentRecordParams {
		return &nudge.ConsentRecordParams{ContactID: id, Channel: ch, Purpose: nudge.PurposeMarketing, Status: status, Source: nudge.SourceImport}
	}
	want := []ingest.Row{
		{Line: 2, Patch: &nudge.ContactPatch{
			ID: "c1", Email: ptr("Jane@example.com"), Phone: ptr("+14155550123"), Timezone: ptr("America/New_York"),
			LifecycleStage: ptr(nudge.StageMQL), JourneyStage: ptr("trial"), IsCustomer: ptr(true),
			Attributes: map[string]any{"company_size": "50-100", "notes": `likes "quotes"`},
		}, Consent: []*nudge.ConsentRecordParams{consent("c1", "sms", "opted_in"), consent("c1", "email", "opted_in")}},
		{Line: 3, Patch: &nudge.ContactPatch{ID: "c2"}},
		{Line: 4, Patch: &nudge.ContactPatch{
			ID: "c3", Email: ptr("bob@example.com"), LifecycleStage: ptr(nudge.StageCustomer), IsCustomer: ptr(false),
		}, Consent: []*nudge.ConsentRecordParams{consent("c3", "sms", "opted_out"), consent("c3", "email", "unknown")}},
	}
	if diff := cmp.Diff(want, readAll(t, r)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if r.BytesRead() != int64(len(in)) {
		t.Errorf("BytesRead = %d, want %d", r.BytesRead(), len(in))
	}
}

func TestCSVReaderBadRows(t *testing.T) {
	in := strings.Join([]string{
		"id,email,phone,timezone,is_customer,sms_consent", // 1
		"c1,a@example.com,+14155550123,UTC,true,yes",      // 2
		"c2,,12,,,",             // 3 bad phone
		"c3,,,Mars/Olympus,,",   // 4 unknown time zone
		"c4,,,,maybe,,",         // 5 7 columns
		"c5,,,,maybe,",          // 6 bad bool
		",a@example.com,,,,",    // 7 no id
		"c7,not-an-email,,,,",   // 8 bad email
		"c8,,,,,perhaps",        // 9 bad consent
		"c9,x",                  // 10 2 columns
		"c10,\"multi",           // 11 a quoted field over two lines
		"line\",,,,",            // 12
		"c11,b@example.com,,,,", // 13
		"c12,bad\"quote,,,,",    // 14 bare quote
		"c13,,415 555 0199,,,",  // 15
	}, "\n") + "\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, r)
	want := []string{
		"",
		`line 3, column "phone": "12" is not a valid phone number for region US`,
		`line 4, column "timezone": "Mars/Olympus" is not an IANA time zone name (such as America/New_York)`,
		`line 5: 7 columns, the header has 6`,
		`line 6, column "is_customer": "maybe" is not a yes/no value (use true or false)`,
		`line 7, column "id": required`,
		`line 8, column "email": "not-an-email" is not an email address`,
		`line 9, column "sms_consent": "perhaps" is not a consent value (use opted_in, opted_out or unknown)`,
		`line 10: 2 columns, the header has 6`,
		`line 11, column "email": "multi\nline" is not an email address`,
		"",
		`line 14: bare " in non-quoted-field (character 8)`,
		"",
	}
	if diff := cmp.Diff(want, rowErrors(rows)); diff != "" {
		t.Errorf("row errors (-want +got):\n%s", diff)
	}
	var lines []int
	for _, r := range rows {
		lines = append(lines, r.Line)
	}
	if diff := cmp.Diff([]int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if last := rows[len(rows)-1]; last.Patch == nil || *last.Patch.Phone != "+14155550199" {
		t.Errorf("last row %+v", last)
	}
	for _, r := range rows {
		if r.Err != nil && (r.Patch != nil || r.Consent != nil) {
			t.Errorf("line %d has an error and a patch", r.Line)
		}
	}
}

func TestCSVMultiLineField(t *testing.T) {
	in := "id,notes,phone\r\n" +
		"c1,\"first\r\nsecond\r\nthird\",+14155550123\r\n" +
		"c2,\"one\ntwo\",12\r\n" +
		"c3,plain,x\r\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, r)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].Line != 2 || rows[0].Patch.Attributes["notes"] != "first\nsecond\nthird" {
		t.Errorf("row 1: line %d, %+v", rows[0].Line, rows[0].Patch)
	}
	if got, want := rowErrors(rows[1:]), []string{
		`line 5, column "phone": "12" is not a valid phone number for region US`,
		`line 7, column "phone": "x" is not a valid phone number for region US`,
	}; !cmp.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestCSVUnterminatedQuote(t *testing.T) {
	in := "id,notes\nc1,ok\nc2,\"never closed\nc3,x\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := rowErrors(readAll(t, r))
	want := []string{"", `line 3: extraneous or missing " in quoted-field (at line 4, character 6)`}
	if !cmp.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestCSVEmailAsID(t *testing.T) {
	in := "Email,Plan\nJane@Example.com,pro\n,free\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, r)
	want := &nudge.ContactPatch{ID: "jane@example.com", Email: ptr("Jane@example.com"), Attributes: map[string]any{"plan": "pro"}}
	if diff := cmp.Diff(want, rows[0].Patch); diff != "" {
		t.Errorf("row 1 (-want +got):\n%s", diff)
	}
	if got := rowErrors(rows[1:]); got[0] != `line 3, column "Email": required: the file has no id column, so the email address is the contact id` {
		t.Errorf("row 2: %s", got[0])
	}
}

func TestCSVMapping(t *testing.T) {
	const file = `{
  "Customer Number": "id",
  "Cell": "phone",
  "tier": "attributes.plan",
  "Internal Notes": "-"
}`
	m, err := ingest.LoadMapping(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	in := "customer number,CELL,Tier,Internal Notes,Region\n42,415-555-0123,gold,secret,West\n"
	r, err := ingest.NewCSVReader(strings.NewReader(in), m, us)
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, r)
	want := []ingest.Row{{Line: 2, Patch: &nudge.ContactPatch{
		ID: "42", Phone: ptr("+14155550123"), Attributes: map[string]any{"plan": "gold", "region": "West"},
	}}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestLoadMappingErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"malformed", "{\n  \"a\": \"id\",\n  \"b\" \"email\"\n}", `mapping: malformed JSON at line 3, column 7 (byte 21): invalid character '"' after object key`},
		{"not an object", `["id"]`, `mapping: expected a JSON object, got array`},
		{"value not a string", "{\n  \"a\": \"id\",\n  \"b\": 3\n}", `mapping: at line 3, column 8 (byte 22): column "b": expected a string, got number`},
		{"unknown field", "{\"a\": \"id\",\n\"b\": \"nme\"}", `mapping: at line 2, column 6 (byte 17): column "b" maps to unknown field "nme"; use one of id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, sms_consent, email_consent, attributes.<name> or - (ignore)`},
		{"empty attribute", `{"a": "attributes."}`, `mapping: at line 1, column 7 (byte 6): column "a" maps to unknown field "attributes."; use one of id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, sms_consent, email_consent, attributes.<name> or - (ignore)`},
		{"duplicate", "{\"a\": \"id\",\n \"a\": \"email\"}", `mapping: at line 2, column 2 (byte 13): column "a" is mapped twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ingest.LoadMapping(strings.NewReader(tt.file))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n got %v\nwant %s", err, tt.want)
			}
			if nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("code %s", nudge.ErrorCode(err))
			}
		})
	}
}

func TestNewCSVReaderErrors(t *testing.T) {
	tests := []struct {
		name, in string
		m        ingest.Mapping
		want     string
	}{
		{"empty file", "", nil, "the file is empty: the first line must be a header"},
		{"BOM only", "\uFEFF", nil, "the file is empty: the first line must be a header"},
		{"no id column", "name,plan\na,b\n", nil, "no id column: map a column to id (or to email, which then serves as the id)"},
		{"unknown field", "id,x\n", ingest.Mapping{"x": "nope"}, `mapping: column "x" maps to unknown field "nope"; use one of id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, sms_consent, email_consent, attributes.<name> or - (ignore)`},
		{"missing header", "id,x\n", ingest.Mapping{"y": "phone", "z": "-"}, `mapping: the header has no column "y", "z"`},
		{"two ids", "id,Contact ID\n", nil, `mapping: columns "id" and "Contact ID" both map to id; map one of them to "-"`},
		{"two attributes", "Plan,plan\n", ingest.Mapping{"Plan": "id"}, ``},
		{"same attribute", "id,Company Size,company_size\n", nil, `mapping: columns "Company Size" and "company_size" both map to attributes.company_size; map one of them to "-"`},
		{"bad header", "id,a\"b\n", nil, `header, bare " in non-quoted-field (character 5)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ingest.NewCSVReader(strings.NewReader(tt.in), tt.m, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n got %v\nwant %s", err, tt.want)
			}
			if nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("code %s", nudge.ErrorCode(err))
			}
		})
	}
}

func TestDefaultField(t *testing.T) {
	for in, want := range map[string]string{
		"id": "id", "Contact ID": "id", "contact_id": "id", "user_id": "id", "userId": "id", "External ID": "id",
		"Email Address": "email", "E-mail": "email", "EMAIL": "email",
		"Phone Number": "phone", "mobile": "phone", "Mobile Phone": "phone",
		"time_zone": "timezone", "Time Zone": "timezone",
		"Lifecycle Stage": "lifecycle_stage", "lifecycleStage": "lifecycle_stage",
		"SMS Opt-In": "sms_consent", "Email Opt In": "email_consent",
		"Company Size": "attributes.company_size", "companySize": "attributes.company_size",
		"  Annual Revenue ($) ": "attributes.annual_revenue", "Größe": "attributes.größe", "ARR2024": "attributes.arr2024",
		"???": "-", "": "-",
	} {
		if got := ingest.DefaultField(in); got != want {
			t.Errorf("DefaultField(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCSVReaderSourceError: an error of the source stops the reader.
func TestCSVReaderSourceError(t *testing.T) {
	boom := errors.New("disk on fire")
	src := io.MultiReader(strings.NewReader("id\nc1\n"), iotest.ErrReader(boom))
	r, err := ingest.NewCSVReader(src, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, boom) {
		t.Errorf("Next error %v, want %v", err, boom)
	}
}
