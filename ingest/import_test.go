package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/nudgetest"
)

var importNow = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeStore records the batches Import writes. Contacts it has seen are
// "updated"; consent for a contact without an address is refused.
type fakeStore struct {
	nudge.Store // not implemented: Import must not call anything else
	seen        map[string]bool
	phones      map[string]bool
	merges      [][]string // contact ids per ContactMerge
	consents    []int      // params per ConsentRecord
	failAt      int        // ContactMerge call (from 1) that fails; 0: none
}

func (f *fakeStore) ContactMerge(ctx context.Context, ps []*nudge.ContactPatch, now time.Time) ([]nudge.ContactMergeResult, error) {
	if !now.Equal(importNow) {
		return nil, fmt.Errorf("now %v", now)
	}
	if len(f.merges)+1 == f.failAt {
		return nil, errors.New("database is locked")
	}
	var ids []string
	var res []nudge.ContactMergeResult
	for _, p := range ps {
		ids = append(ids, p.ID)
		res = append(res, nudge.ContactMergeResult{Contact: &nudge.Contact{ID: p.ID}, Created: !f.seen[p.ID]})
		f.seen[p.ID] = true
		if p.Phone != nil && *p.Phone != "" {
			f.phones[p.ID] = true
		}
	}
	f.merges = append(f.merges, ids)
	return res, nil
}

func (f *fakeStore) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	f.consents = append(f.consents, len(ps))
	var res []nudge.ConsentRecordResult
	for _, p := range ps {
		if p.Channel == nudge.ChannelSMS && !f.phones[p.ContactID] {
			res = append(res, nudge.ConsentRecordResult{Err: nudge.FieldErrorf("channel", "the contact has no sms address")})
			continue
		}
		res = append(res, nudge.ConsentRecordResult{Entry: &nudge.ConsentEntry{ContactID: p.ContactID}})
	}
	return res, nil
}

func newFakeStore() *fakeStore {
	return &fakeStore{seen: map[string]bool{"c2": true}, phones: map[string]bool{}}
}

const importCSV = "id,phone,sms_consent,plan\n" + // 1
	"c1,+14155550101,yes,pro\n" + // 2
	"c2,,yes,free\n" + // 3: consent refused (no phone)
	"c3,12,,\n" + // 4: bad phone
	"c4,+14155550104,no,\n" + // 5
	"c5,,,\n" + // 6
	"c6,,,x,extra\n" + // 7: 5 columns
	"c7,,,\n" // 8

func TestImport(t *testing.T) {
	f := newFakeStore()
	r, err := ingest.NewCSVReader(strings.NewReader(importCSV), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	var progress [][2]int64
	sum, err := ingest.Import(context.Background(), f, r, ingest.ImportOptions{
		BatchSize:  2,
		MaxErrors:  2,
		Now:        func() time.Time { return importNow },
		OnError:    func(e ingest.RowError) { seen = append(seen, e.Error()) },
		OnProgress: func(rows int, n int64) { progress = append(progress, [2]int64{int64(rows), n}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first batch (c1, c2) is written as soon as it is full, so c2's
	// consent error comes before line 4's.
	wantSeen := []string{
		`line 3, column "sms_consent": the contact has no sms address`,
		`line 4, column "phone": "12" is not a valid phone number for region US`,
		`line 7: 5 columns, the header has 4`,
	}
	if diff := cmp.Diff(wantSeen, seen); diff != "" {
		t.Errorf("OnError (-want +got):\n%s", diff)
	}
	want := &ingest.ImportSummary{
		Rows: 7, Imported: 4, Updated: 1, Rejected: 2, ConsentRecorded: 2, ConsentRejected: 1,
		Errors: []ingest.RowError{
			{Line: 3, Column: "sms_consent", Message: "the contact has no sms address"},
			{Line: 4, Column: "phone", Message: `"12" is not a valid phone number for region US`},
		},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"c1", "c2"}, {"c4", "c5"}, {"c7"}}, f.merges); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 1}, f.consents); diff != "" {
		t.Errorf("consent batches (-want +got):\n%s", diff)
	}
	if len(progress) != 3 || progress[2] != [2]int64{7, int64(len(importCSV))} {
		t.Errorf("progress %v", progress)
	}
}

func TestImportStoreError(t *testing.T) {
	f := newFakeStore()
	f.failAt = 2
	r, err := ingest.NewCSVReader(strings.NewReader(importCSV), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.Import(context.Background(), f, r, ingest.ImportOptions{BatchSize: 2, Now: func() time.Time { return importNow }})
	if err == nil || err.Error() != "import lines 5-6: database is locked" {
		t.Fatalf("error %v, want the failing batch's lines", err)
	}
	if sum == nil || sum.Imported != 1 || sum.Updated != 1 || len(f.merges) != 1 {
		t.Errorf("summary %+v, merges %v: want the first batch counted", sum, f.merges)
	}
}

func TestImportOptions(t *testing.T) {
	r, _ := ingest.NewCSVReader(strings.NewReader("id\nc1\n"), nil, nil)
	if _, err := ingest.Import(context.Background(), newFakeStore(), r, ingest.ImportOptions{}); err == nil {
		t.Error("Import without Now: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ingest.Import(ctx, newFakeStore(), r, ingest.ImportOptions{Now: func() time.Time { return importNow }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a canceled context: %v", err)
	}
}

// TestImportSQLite imports into the real store twice: the second run updates.
func TestImportSQLite(t *testing.T) {
	db := nudgetest.SQLite(t)
	ctx := context.Background()
	const in = "\uFEFFContact ID,Email Address,Mobile,Time Zone,Lifecycle Stage,Is Customer,SMS Opt In,Email Opt In,Plan\r\n" +
		"c1,jane@example.com,(415) 555-0101,America/Los_Angeles,MQL,no,yes,yes,pro\r\n" +
		"c2,bob@example.com,,Europe/Paris,customer,yes,yes,no,\"free\r\ntier\"\r\n" +
		"c3,,12,,,,,,\r\n" +
		"c4,,,Moon/Base,,,,,\r\n" +
		"c5,amy@example.com,+44 20 7946 0958,,,,,subscribed,team\r\n"
	opt := ingest.ImportOptions{BatchSize: 2, Now: func() time.Time { return importNow }}
	r, err := ingest.NewCSVReader(strings.NewReader(in), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.Import(ctx, db, r, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := &ingest.ImportSummary{
		Rows: 5, Imported: 3, Rejected: 2, ConsentRecorded: 4, ConsentRejected: 1,
		Errors: []ingest.RowError{
			{Line: 3, Column: "SMS Opt In"}, // c2 has no phone: the store refuses its SMS opt-in
			{Line: 5, Column: "Mobile", Message: `"12" is not a valid phone number for region US`},
			{Line: 6, Column: "Time Zone", Message: `"Moon/Base" is not an IANA time zone name (such as America/New_York)`},
		},
	}
	if len(sum.Errors) > 0 && sum.Errors[0].Message != "" {
		want.Errors[0].Message = sum.Errors[0].Message // the store's words
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	c, err := db.ContactGet(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	wantC := &nudge.Contact{ID: "c1", Email: "jane@example.com", Phone: "+14155550101", Timezone: "America/Los_Angeles",
		LifecycleStage: nudge.StageMQL, Attributes: map[string]any{"plan": "pro"}}
	if diff := cmp.Diff(wantC, c, cmpIgnoreTimes); diff != "" {
		t.Errorf("c1 (-want +got):\n%s", diff)
	}
	states, err := db.ConsentList(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range states {
		got[s.Channel+"/"+s.Purpose] = s.Status + "/" + s.Source
	}
	if diff := cmp.Diff(map[string]string{"sms/marketing": "opted_in/import", "email/marketing": "opted_in/import"}, got); diff != "" {
		t.Errorf("c1 consent (-want +got):\n%s", diff)
	}
	c2, err := db.ContactGet(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Attributes["plan"] != "free\ntier" || !c2.IsCustomer {
		t.Errorf("c2 = %+v", c2)
	}

	// Again, with c1's plan changed: nothing is created.
	in2 := strings.Replace(in, "yes,yes,pro", "yes,yes,enterprise", 1)
	r, err = ingest.NewCSVReader(strings.NewReader(in2), nil, us)
	if err != nil {
		t.Fatal(err)
	}
	sum, err = ingest.Import(ctx, db, r, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 0 || sum.Updated != 3 || sum.Rejected != 2 {
		t.Errorf("second import: %+v", sum)
	}
	if c, _ := db.ContactGet(ctx, "c1"); c == nil || c.Attributes["plan"] != "enterprise" {
		t.Errorf("c1 after the second import: %+v", c)
	}
}

var cmpIgnoreTimes = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.String()
	return s == "CreatedAt" || s == "UpdatedAt"
}, cmp.Ignore())
