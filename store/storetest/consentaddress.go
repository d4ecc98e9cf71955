package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// testConsentByAddress: consent recorded for an address no contact has (a
// STOP from an unknown number) belongs to the address, so the contact who
// later gets it is opted out, and a CRM import cannot undo it.
func testConsentByAddress(t *testing.T, open func(t *testing.T) nudge.Store) {
	const sms, email = nudge.ChannelSMS, nudge.ChannelEmail
	byAddress := func(channel, address, status, key string) *nudge.ConsentRecordParams {
		return &nudge.ConsentRecordParams{Address: address, Channel: channel, Purpose: nudge.PurposeMarketing,
			Status: status, Source: nudge.SourceKeyword, Evidence: nudge.ConsentEvidence{Keyword: "STOP"}, IdempotencyKey: key}
	}

	t.Run("a STOP before the contact exists", func(t *testing.T) {
		s := open(t)
		e := mustRecord(t, s, now.Add(-time.Hour), byAddress(sms, "+15550177", nudge.ConsentOptedOut, ""))[0]
		if e.ContactID != "" || e.AddressHash == "" {
			t.Fatalf("entry = contact %q, hash %q; want no contact and the address's hash", e.ContactID, e.AddressHash)
		}
		mustPut(t, s, now, &nudge.Contact{ID: "late", Phone: "+15550177"})
		got, err := s.ConsentList(ctx, "late")
		if err != nil {
			t.Fatalf("ConsentList(late): %v", err)
		}
		want := []*nudge.ConsentState{{Channel: sms, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut,
			Source: nudge.SourceKeyword, UpdatedAt: now.Add(-time.Hour), EntryID: e.ID}}
		if d := diff(want, got); d != "" {
			t.Errorf("ConsentList(late) (-want +got):\n%s", d)
		}
		led, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{ContactID: "late"})
		if err != nil || len(led) != 1 || led[0].ID != e.ID {
			t.Errorf("ConsentLedger(late) = %v, %v; want the entry recorded by address", led, err)
		}
		rs, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{change("late", sms, nudge.ConsentOptedIn, nudge.SourceImport)}, now)
		if err != nil {
			t.Fatalf("ConsentRecord: %v", err)
		}
		wantCode(t, "an import opting the number back in", rs[0].Err, nudge.ECONFLICT)
	})

	t.Run("an email address is normalized", func(t *testing.T) {
		s := open(t)
		mustRecord(t, s, now, byAddress(email, " Ann@Example.COM ", nudge.ConsentOptedOut, ""))
		mustPut(t, s, now, &nudge.Contact{ID: "ann", Email: "ann@example.com"})
		got, err := s.ConsentList(ctx, "ann")
		if err != nil || len(got) != 1 || got[0].Status != nudge.ConsentOptedOut {
			t.Errorf("ConsentList(ann) = %v, %v; want email opted out", got, err)
		}
	})

	t.Run("an idempotency key records once", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, now, &nudge.Contact{ID: "c1", Phone: "+15550100"})
		keyed := change("c1", sms, nudge.ConsentOptedOut, nudge.SourceKeyword)
		keyed.IdempotencyKey = "twilio-SM1"
		rs, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{keyed, byAddress(sms, "+15550100", nudge.ConsentOptedOut, "twilio-SM1")}, now)
		if err != nil {
			t.Fatalf("ConsentRecord: %v", err)
		}
		if rs[0].Entry == nil || rs[0].Duplicate || !rs[1].Duplicate || rs[1].Entry != nil || rs[1].Err != nil {
			t.Fatalf("first batch = %+v, %+v; want the first recorded and the second a duplicate", rs[0], rs[1])
		}
		rs, err = s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{keyed}, now.Add(time.Minute))
		if err != nil || !rs[0].Duplicate || rs[0].Entry != nil {
			t.Fatalf("the retry = %+v, %v; want a duplicate", rs, err)
		}
		led, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{})
		if err != nil || len(led) != 1 {
			t.Errorf("ledger = %d entries, %v; want 1", len(led), err)
		}
	})

	t.Run("bad addresses", func(t *testing.T) {
		s := open(t)
		both := byAddress(sms, "+15550100", nudge.ConsentOptedOut, "")
		both.ContactID = "c1"
		for _, tc := range []struct {
			name string
			p    *nudge.ConsentRecordParams
		}{
			{"not E.164", byAddress(sms, "555-0100", nudge.ConsentOptedOut, "")},
			{"not an email", byAddress(email, "ann.example.com", nudge.ConsentOptedOut, "")},
			{"a contact and an address", both},
			{"neither", byAddress(sms, "", nudge.ConsentOptedOut, "")},
		} {
			rs, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{tc.p}, now)
			if err != nil {
				t.Fatalf("%s: ConsentRecord: %v", tc.name, err)
			}
			wantCode(t, tc.name, rs[0].Err, nudge.EINVALID)
		}
	})
}
