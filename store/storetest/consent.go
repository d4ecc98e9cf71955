package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nudge/nudge"
)

// consentContacts are the contacts of the consent tests. c3 shares c1's
// phone number, c4 c1's email address in another case: consent belongs to
// the address, so they share c1's consent.
func consentContacts(t testing.TB, s nudge.Store) {
	t.Helper()
	mustPut(t, s, now.Add(-time.Hour),
		&nudge.Contact{ID: "c1", Email: "Ann@Example.com", Phone: "+15550100"},
		&nudge.Contact{ID: "c2", Email: "bob@example.com"},
		&nudge.Contact{ID: "c3", Phone: "+15550100"},
		&nudge.Contact{ID: "c4", Email: " ann@example.com"},
	)
}

// change makes a consent change for the marketing purpose.
func change(contactID, channel, status, source string) *nudge.ConsentRecordParams {
	return &nudge.ConsentRecordParams{ContactID: contactID, Channel: channel, Purpose: nudge.PurposeMarketing,
		Status: status, Source: source}
}

func state(channel, status, source string, at time.Time) *nudge.ConsentState {
	return &nudge.ConsentState{Channel: channel, Purpose: nudge.PurposeMarketing, Status: status, Source: source, UpdatedAt: at}
}

var ignoreEntryID = cmpopts.IgnoreFields(nudge.ConsentState{}, "EntryID")

func testConsentRecord(t *testing.T, open func(t *testing.T) nudge.Store) {
	before := now.Add(-30 * time.Minute)
	const (
		sms, email = nudge.ChannelSMS, nudge.ChannelEmail
		in, out    = nudge.ConsentOptedIn, nudge.ConsentOptedOut
	)
	withPurpose := func(p *nudge.ConsentRecordParams, purpose string) *nudge.ConsentRecordParams {
		p.Purpose = purpose
		return p
	}
	tests := []struct {
		name       string
		before     []*nudge.ConsentRecordParams // recorded half an hour before, all valid
		record     []*nudge.ConsentRecordParams // recorded at now
		wantCodes  []string                     // per result; "" for recorded
		wantStates map[string][]*nudge.ConsentState
	}{
		{
			name:       "an opt-in",
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceForm)},
			wantCodes:  []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, in, nudge.SourceForm, now)}},
		},
		{
			name: "the state's time is when it happened",
			record: []*nudge.ConsentRecordParams{{ContactID: "c1", Channel: sms, Purpose: nudge.PurposeMarketing,
				Status: in, Source: nudge.SourceImport, OccurredAt: now.Add(-72 * time.Hour)}},
			wantCodes:  []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, in, nudge.SourceImport, now.Add(-72*time.Hour))}},
		},
		{
			name:       "an unknown contact",
			record:     []*nudge.ConsentRecordParams{change("nobody", sms, in, nudge.SourceAPI), change("c1", email, in, nudge.SourceAPI)},
			wantCodes:  []string{nudge.ENOTFOUND, ""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(email, in, nudge.SourceAPI, now)}},
		},
		{
			name:      "a contact without an address for the channel",
			record:    []*nudge.ConsentRecordParams{change("c2", sms, in, nudge.SourceAPI), change("c2", email, in, nudge.SourceAPI)},
			wantCodes: []string{nudge.EINVALID, ""},
			wantStates: map[string][]*nudge.ConsentState{
				"c2": {state(email, in, nudge.SourceAPI, now)},
			},
		},
		{
			name: "values that are not valid",
			record: []*nudge.ConsentRecordParams{
				change("c1", sms, "maybe", nudge.SourceAPI),
				change("c1", "fax", in, nudge.SourceAPI),
				change("c1", sms, in, "rumour"),
				withPurpose(change("c1", sms, in, nudge.SourceAPI), "spam"),
				change("", sms, in, nudge.SourceAPI),
			},
			wantCodes:  []string{nudge.EINVALID, nudge.EINVALID, nudge.EINVALID, nudge.EINVALID, nudge.EINVALID},
			wantStates: map[string][]*nudge.ConsentState{"c1": {}},
		},
		{
			name:       "the state is the latest change",
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceAPI), change("c1", sms, out, nudge.SourceKeyword)},
			wantCodes:  []string{"", ""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, out, nudge.SourceKeyword, now)}},
		},
		{
			name:       "an import cannot undo a STOP",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceImport)},
			wantCodes:  []string{nudge.ECONFLICT},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, out, nudge.SourceKeyword, before)}},
		},
		{
			name:       "an API call cannot undo a provider opt-out",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceProvider)},
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceAPI)},
			wantCodes:  []string{nudge.ECONFLICT},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, out, nudge.SourceProvider, before)}},
		},
		{
			name:       "a refusal sees a change earlier in the same call",
			record:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword), change("c1", sms, in, nudge.SourceImport)},
			wantCodes:  []string{"", nudge.ECONFLICT},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, out, nudge.SourceKeyword, now)}},
		},
		{
			name:      "a refused change does not stop the others",
			before:    []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:    []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceImport), change("c1", email, in, nudge.SourceImport)},
			wantCodes: []string{nudge.ECONFLICT, ""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {
				state(email, in, nudge.SourceImport, now), state(sms, out, nudge.SourceKeyword, before)}},
		},
		{
			name:       "an admin can opt back in",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceAdmin)},
			wantCodes:  []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, in, nudge.SourceAdmin, now)}},
		},
		{
			name:       "the person can opt back in by keyword",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceKeyword)},
			wantCodes:  []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, in, nudge.SourceKeyword, now)}},
		},
		{
			name:       "an import can undo an import",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceImport)},
			record:     []*nudge.ConsentRecordParams{change("c1", sms, in, nudge.SourceImport)},
			wantCodes:  []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {state(sms, in, nudge.SourceImport, now)}},
		},
		{
			name:      "purposes are separate",
			before:    []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:    []*nudge.ConsentRecordParams{withPurpose(change("c1", sms, in, nudge.SourceAPI), nudge.PurposeTransactional)},
			wantCodes: []string{""},
			wantStates: map[string][]*nudge.ConsentState{"c1": {
				state(sms, out, nudge.SourceKeyword, before),
				{Channel: sms, Purpose: nudge.PurposeTransactional, Status: in, Source: nudge.SourceAPI, UpdatedAt: now},
			}},
		},
		{
			name: "consent belongs to the address, not the contact",
			record: []*nudge.ConsentRecordParams{
				change("c1", sms, out, nudge.SourceKeyword),
				change("c1", email, in, nudge.SourceForm),
			},
			wantCodes: []string{"", ""},
			wantStates: map[string][]*nudge.ConsentState{
				"c1": {state(email, in, nudge.SourceForm, now), state(sms, out, nudge.SourceKeyword, now)},
				"c2": {},
				"c3": {state(sms, out, nudge.SourceKeyword, now)}, // same phone number
				"c4": {state(email, in, nudge.SourceForm, now)},   // same email address, other case
			},
		},
		{
			name:       "another contact with the address is held to the same STOP",
			before:     []*nudge.ConsentRecordParams{change("c1", sms, out, nudge.SourceKeyword)},
			record:     []*nudge.ConsentRecordParams{change("c3", sms, in, nudge.SourceImport)},
			wantCodes:  []string{nudge.ECONFLICT},
			wantStates: map[string][]*nudge.ConsentState{"c3": {state(sms, out, nudge.SourceKeyword, before)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			consentContacts(t, s)
			if tt.before != nil {
				mustRecord(t, s, before, tt.before...)
			}
			rs, err := s.ConsentRecord(ctx, tt.record, now)
			if err != nil {
				t.Fatalf("ConsentRecord: %v", err)
			}
			if len(rs) != len(tt.record) {
				t.Fatalf("ConsentRecord: %d results for %d changes", len(rs), len(tt.record))
			}
			var gotCodes []string
			for i, r := range rs {
				gotCodes = append(gotCodes, nudge.ErrorCode(r.Err))
				if (r.Err == nil) == (r.Entry == nil) {
					t.Errorf("result %d: entry %v and error %v; want exactly one", i, r.Entry, r.Err)
				}
				if r.Entry != nil {
					checkEntry(t, r.Entry, tt.record[i])
				}
			}
			if d := diff(tt.wantCodes, gotCodes); d != "" {
				t.Errorf("result codes (-want +got):\n%s", d)
			}
			for id, want := range tt.wantStates {
				got, err := s.ConsentList(ctx, id)
				if err != nil {
					t.Fatalf("ConsentList(%s): %v", id, err)
				}
				if d := diff(want, sortStates(got), ignoreEntryID); d != "" {
					t.Errorf("ConsentList(%s) (-want +got):\n%s", id, d)
				}
			}
		})
	}
}

// checkEntry checks an entry ConsentRecord returned against its change.
func checkEntry(t testing.TB, e *nudge.ConsentEntry, p *nudge.ConsentRecordParams) {
	t.Helper()
	occurred := p.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	want := &nudge.ConsentEntry{ID: e.ID, ContactID: p.ContactID, AddressHash: e.AddressHash,
		Channel: p.Channel, Purpose: p.Purpose, Status: p.Status, Source: p.Source, Evidence: p.Evidence,
		OccurredAt: occurred, RecordedAt: now}
	if d := diff(want, e); d != "" {
		t.Errorf("entry (-want +got):\n%s", d)
	}
	if e.ID <= 0 || e.AddressHash == "" {
		t.Errorf("entry has id %d, address hash %q; want both set", e.ID, e.AddressHash)
	}
	wantUTC(t, "entry", e.OccurredAt, e.RecordedAt)
}

func testConsentList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	consentContacts(t, s)

	t.Run("unknown contact", func(t *testing.T) {
		_, err := s.ConsentList(ctx, "nobody")
		wantCode(t, "ConsentList(nobody)", err, nudge.ENOTFOUND)
	})
	t.Run("nothing recorded", func(t *testing.T) {
		got, err := s.ConsentList(ctx, "c1")
		if err != nil || len(got) != 0 {
			t.Errorf("ConsentList(c1) = %v, %v; want none", got, err)
		}
	})
	t.Run("state points at its entry", func(t *testing.T) {
		es := mustRecord(t, s, now,
			change("c1", nudge.ChannelSMS, nudge.ConsentOptedIn, nudge.SourceAPI),
			change("c1", nudge.ChannelSMS, nudge.ConsentOptedOut, nudge.SourceKeyword),
		)
		got, err := s.ConsentList(ctx, "c1")
		if err != nil {
			t.Fatalf("ConsentList(c1): %v", err)
		}
		want := []*nudge.ConsentState{{Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, UpdatedAt: now, EntryID: es[1].ID}}
		if d := diff(want, got); d != "" {
			t.Errorf("ConsentList(c1) (-want +got):\n%s", d)
		}
		wantUTC(t, "state", got[0].UpdatedAt)
	})
	t.Run("a new phone number has its own consent", func(t *testing.T) {
		mustMerge(t, s, now, &nudge.ContactPatch{ID: "c1", Phone: ptr("+15550199")})
		got, err := s.ConsentList(ctx, "c1")
		if err != nil || len(got) != 0 {
			t.Errorf("ConsentList(c1) after the phone changed = %v, %v; want none", got, err)
		}
	})
}

func testConsentLedger(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	consentContacts(t, s)
	const sms, email = nudge.ChannelSMS, nudge.ChannelEmail
	e1 := mustRecord(t, s, now, &nudge.ConsentRecordParams{ContactID: "c1", Channel: sms, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedIn, Source: nudge.SourceForm,
		Evidence: nudge.ConsentEvidence{Text: "Text me offers", FormURL: "https://example.com/join", IP: "203.0.113.7"}})[0]
	e2 := mustRecord(t, s, now.Add(time.Minute), change("c2", email, nudge.ConsentOptedIn, nudge.SourceAPI))[0]
	rest := mustRecord(t, s, now.Add(2*time.Minute),
		change("c1", email, nudge.ConsentOptedOut, nudge.SourceAPI),
		&nudge.ConsentRecordParams{ContactID: "c3", Channel: sms, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword, Evidence: nudge.ConsentEvidence{Keyword: "STOP"}},
		change("c2", email, nudge.ConsentOptedOut, nudge.SourceAPI),
	)
	e3, e4, e5 := rest[0], rest[1], rest[2]
	all := []*nudge.ConsentEntry{e1, e2, e3, e4, e5}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("entry ids %v are not increasing in the order recorded", entryIDs(all))
		}
	}

	t.Run("whole ledger", func(t *testing.T) {
		got, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{})
		if err != nil {
			t.Fatalf("ConsentLedger: %v", err)
		}
		if d := diff(all, got); d != "" {
			t.Errorf("ConsentLedger (-want +got):\n%s", d)
		}
		for _, e := range got {
			wantUTC(t, "entry", e.OccurredAt, e.RecordedAt)
		}
	})

	tests := []struct {
		name string
		p    nudge.ConsentLedgerParams
		want []*nudge.ConsentEntry
	}{
		{"after an id", nudge.ConsentLedgerParams{AfterID: e2.ID}, []*nudge.ConsentEntry{e3, e4, e5}},
		{"limit", nudge.ConsentLedgerParams{Limit: 2}, []*nudge.ConsentEntry{e1, e2}},
		{"after the last", nudge.ConsentLedgerParams{AfterID: e5.ID}, []*nudge.ConsentEntry{}},
		// c1's own entries, and c3's, recorded for the phone number c1 has too.
		{"a contact", nudge.ConsentLedgerParams{ContactID: "c1"}, []*nudge.ConsentEntry{e1, e3, e4}},
		{"another contact", nudge.ConsentLedgerParams{ContactID: "c2"}, []*nudge.ConsentEntry{e2, e5}},
		{"a contact sharing a number", nudge.ConsentLedgerParams{ContactID: "c3"}, []*nudge.ConsentEntry{e1, e4}},
		{"a contact, paged", nudge.ConsentLedgerParams{ContactID: "c1", AfterID: e1.ID, Limit: 1}, []*nudge.ConsentEntry{e3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ConsentLedger(ctx, &tt.p)
			if err != nil {
				t.Fatalf("ConsentLedger: %v", err)
			}
			if d := diff(entryIDs(tt.want), entryIDs(got)); d != "" {
				t.Errorf("entry ids (-want +got):\n%s", d)
			}
		})
	}

	t.Run("paging the whole ledger", func(t *testing.T) {
		var got [][]int64
		var after int64
		for range 10 {
			es, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{AfterID: after, Limit: 2})
			if err != nil {
				t.Fatalf("ConsentLedger: %v", err)
			}
			if len(es) == 0 {
				break
			}
			got = append(got, entryIDs(es))
			after = es[len(es)-1].ID
		}
		want := [][]int64{{e1.ID, e2.ID}, {e3.ID, e4.ID}, {e5.ID}}
		if d := diff(want, got); d != "" {
			t.Errorf("pages (-want +got):\n%s", d)
		}
	})

	t.Run("unknown contact", func(t *testing.T) {
		_, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{ContactID: "nobody"})
		wantCode(t, "ConsentLedger(nobody)", err, nudge.ENOTFOUND)
	})
}
