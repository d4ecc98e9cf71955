package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testContactErase(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	later := now.Add(time.Hour)
	mustPut(t, s, now,
		&nudge.Contact{ID: "c1", Email: "ann@example.com", Phone: "+15550100", Attributes: map[string]any{"plan": "pro"}},
		&nudge.Contact{ID: "c2", Email: "bob@example.com", Phone: "+15550200"},
	)
	mustIngest(t, s, now,
		track("m1", "c1", "page.viewed", 0, map[string]any{"path": "/pricing"}),
		identify("m2", "c1", 1, &nudge.ContactPatch{Attributes: map[string]any{"plan": "team"}}),
		track("m3", "c2", "page.viewed", 2, nil),
	)
	entries := mustRecord(t, s, now,
		&nudge.ConsentRecordParams{ContactID: "c1", Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword,
			Evidence: nudge.ConsentEvidence{Keyword: "STOP", IP: "203.0.113.7"}},
		&nudge.ConsentRecordParams{ContactID: "c1", Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedIn, Source: nudge.SourceForm,
			Evidence: nudge.ConsentEvidence{Text: "Send me news", FormURL: "https://example.com/news", IP: "203.0.113.7"}},
		&nudge.ConsentRecordParams{ContactID: "c2", Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedIn, Source: nudge.SourceForm,
			Evidence: nudge.ConsentEvidence{FormURL: "https://example.com/news", IP: "198.51.100.2"}},
	)
	c2Before := mustGet(t, s, "c2")
	if err := s.LinkCreate(ctx, []*nudge.Link{
		{Code: "lnk1", URL: "https://example.com/w", MessageID: "msg1", ContactID: "c1", Channel: nudge.ChannelSMS, CreatedAt: now},
	}); err != nil {
		t.Fatalf("LinkCreate: %v", err)
	}

	if err := s.ContactErase(ctx, "c1", later); err != nil {
		t.Fatalf("ContactErase(c1): %v", err)
	}

	t.Run("its links still redirect, tied to nobody", func(t *testing.T) {
		l, err := s.LinkGet(ctx, "lnk1")
		if err != nil {
			t.Fatalf("LinkGet(lnk1): %v", err)
		}
		if l.URL != "https://example.com/w" || l.ContactID != "" || l.MessageID != "" {
			t.Errorf("link after erasure = %+v; want the URL kept, contact and message ids gone", l)
		}
	})

	t.Run("the contact is gone", func(t *testing.T) {
		_, err := s.ContactGet(ctx, "c1")
		wantCode(t, "ContactGet(c1)", err, nudge.ENOTFOUND)
		page, err := s.ContactList(ctx, &nudge.ContactListParams{})
		if err != nil {
			t.Fatalf("ContactList: %v", err)
		}
		if d := diff([]string{"c2"}, contactIDs(page.Contacts)); d != "" {
			t.Errorf("contacts (-want +got):\n%s", d)
		}
		_, err = s.ConsentList(ctx, "c1")
		wantCode(t, "ConsentList(c1)", err, nudge.ENOTFOUND)
	})

	t.Run("its events are gone, others' are not", func(t *testing.T) {
		if got := listAll(t, s, "c1"); len(got) != 0 {
			t.Errorf("events of c1 after erasure: %v", messageIDs(got))
		}
		if d := diff([]string{"m3"}, messageIDs(listAll(t, s, "c2"))); d != "" {
			t.Errorf("events of c2 (-want +got):\n%s", d)
		}
		if d := diff(c2Before, mustGet(t, s, "c2")); d != "" {
			t.Errorf("c2 changed (-before +after):\n%s", d)
		}
	})

	t.Run("erasing again is not found", func(t *testing.T) {
		wantCode(t, "ContactErase(c1) again", s.ContactErase(ctx, "c1", later), nudge.ENOTFOUND)
		wantCode(t, "ContactErase(nobody)", s.ContactErase(ctx, "nobody", later), nudge.ENOTFOUND)
	})

	// The ledger keeps c1's entries, without the contact id and the IP.
	erased := func(e *nudge.ConsentEntry) *nudge.ConsentEntry {
		c := *e
		c.ContactID = ""
		c.Evidence.IP = ""
		return &c
	}
	t.Run("the ledger keeps the entries, anonymous", func(t *testing.T) {
		got, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{})
		if err != nil {
			t.Fatalf("ConsentLedger: %v", err)
		}
		want := []*nudge.ConsentEntry{erased(entries[0]), erased(entries[1]), entries[2]}
		if d := diff(want, got); d != "" {
			t.Errorf("ConsentLedger (-want +got):\n%s", d)
		}
	})

	t.Run("a new contact with the number is held to its STOP", func(t *testing.T) {
		mustPut(t, s, later, &nudge.Contact{ID: "c9", Phone: "+15550100"})
		got, err := s.ConsentList(ctx, "c9")
		if err != nil {
			t.Fatalf("ConsentList(c9): %v", err)
		}
		want := []*nudge.ConsentState{state(nudge.ChannelSMS, nudge.ConsentOptedOut, nudge.SourceKeyword, now)}
		if d := diff(want, got, ignoreEntryID); d != "" {
			t.Errorf("ConsentList(c9) (-want +got):\n%s", d)
		}
		ledger, err := s.ConsentLedger(ctx, &nudge.ConsentLedgerParams{ContactID: "c9"})
		if err != nil {
			t.Fatalf("ConsentLedger(c9): %v", err)
		}
		if d := diff([]*nudge.ConsentEntry{erased(entries[0])}, ledger); d != "" {
			t.Errorf("ConsentLedger(c9) (-want +got):\n%s", d)
		}
		rs, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{
			change("c9", nudge.ChannelSMS, nudge.ConsentOptedIn, nudge.SourceImport)}, later)
		if err != nil {
			t.Fatalf("ConsentRecord: %v", err)
		}
		wantCode(t, "import opt-in over the erased contact's STOP", rs[0].Err, nudge.ECONFLICT)
	})
}
