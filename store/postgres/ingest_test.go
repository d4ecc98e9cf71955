package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

var now = nudgetest.Epoch

func ptr[T any](v T) *T { return &v }

func track(msg, contact, name string, at time.Time) nudge.IngestItem {
	return nudge.IngestItem{Event: &nudge.Event{MessageID: msg, Type: nudge.EventTrack, ContactID: contact,
		Name: name, Properties: map[string]any{"n": 1.0}, Timestamp: at, ReceivedAt: at}}
}

func identify(msg, contact string, at time.Time, p *nudge.ContactPatch) nudge.IngestItem {
	return nudge.IngestItem{Event: &nudge.Event{MessageID: msg, Type: nudge.EventIdentify, ContactID: contact,
		Timestamp: at, ReceivedAt: at}, Patch: p}
}

func TestEventIngest(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	r, err := db.EventIngest(ctx, []nudge.IngestItem{
		track("m1", "c1", "page.viewed", now),
		identify("m2", "c2", now, &nudge.ContactPatch{Email: ptr("b@example.com"), Attributes: map[string]any{"plan": "pro"}}),
		track("m1", "c1", "page.viewed", now), // duplicate in the batch
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, false, true}; fmt.Sprint(r.Duplicate) != fmt.Sprint(want) {
		t.Errorf("Duplicate = %v, want %v", r.Duplicate, want)
	}
	c2, err := db.ContactGet(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Email != "b@example.com" || c2.Attributes["plan"] != "pro" || c2.CreatedAt.Location() != time.UTC {
		t.Errorf("c2 = %+v", c2)
	}
	// A replayed identify is a duplicate: its patch is not applied, and the
	// contact a duplicate names is not created.
	r, err = db.EventIngest(ctx, []nudge.IngestItem{
		identify("m2", "c2", now, &nudge.ContactPatch{Email: ptr("changed@example.com")}),
		track("m1", "c9", "page.viewed", now),
		track("m3", "c1", "demo.booked", now.Add(time.Minute)),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false}; fmt.Sprint(r.Duplicate) != fmt.Sprint(want) {
		t.Errorf("Duplicate = %v, want %v", r.Duplicate, want)
	}
	if c, _ := db.ContactGet(ctx, "c2"); c.Email != "b@example.com" {
		t.Errorf("duplicate identify applied: email %q", c.Email)
	}
	if _, err := db.ContactGet(ctx, "c9"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("contact of a duplicate: %v, want ENOTFOUND", err)
	}
	page, err := db.EventList(ctx, &nudge.EventListParams{ContactID: "c1", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].MessageID != "m3" || page.NextCursor == "" {
		t.Fatalf("page 1 = %+v", page)
	}
	page, err = db.EventList(ctx, &nudge.EventListParams{ContactID: "c1", Limit: 1, Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].MessageID != "m1" || page.NextCursor != "" {
		t.Fatalf("page 2 = %+v", page)
	}
	if e := page.Events[0]; e.Properties["n"] != 1.0 || e.Timestamp.Location() != time.UTC {
		t.Errorf("event = %+v", e)
	}
}

// TestEventIngestConcurrent runs overlapping batches (shared message ids,
// shared new contacts, identify patches) from several callers: none may
// fail (no deadlock), and every message id is stored exactly once.
func TestEventIngestConcurrent(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	const workers, batches, size = 6, 20, 50
	var stored atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range batches {
				items := make([]nudge.IngestItem, size)
				for i := range items {
					msg := fmt.Sprintf("m%d", rng.IntN(1000))
					c := fmt.Sprintf("c%d", rng.IntN(40))
					if rng.IntN(4) == 0 {
						items[i] = identify(msg, c, now, &nudge.ContactPatch{Attributes: map[string]any{"w": float64(w)}})
					} else {
						items[i] = track(msg, c, "x", now)
					}
				}
				r, err := db.EventIngest(ctx, items, now)
				if err != nil {
					t.Error(err)
					return
				}
				for _, d := range r.Duplicate {
					if !d {
						stored.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	var total int
	for c := range 40 {
		cursor := ""
		for {
			p, err := db.EventList(ctx, &nudge.EventListParams{ContactID: fmt.Sprintf("c%d", c), Cursor: cursor, Limit: 1000})
			if err != nil && nudge.ErrorCode(err) != nudge.ENOTFOUND {
				t.Fatal(err)
			}
			total += len(p.Events)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
	}
	if int64(total) != stored.Load() {
		t.Errorf("%d events stored, %d reported new", total, stored.Load())
	}
}

func TestContactListAttributes(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	for _, c := range []*nudge.Contact{
		{ID: "a", Email: "a@x", Attributes: map[string]any{"plan": "pro", "seats": 42.0, "trial": true, "tags": []any{"x"}}},
		{ID: "b", Attributes: map[string]any{"plan": "free", "seats": "42", "trial": "true"}},
		{ID: "c", Attributes: map[string]any{"plan": nil}},
		{ID: "d"},
	} {
		if _, _, err := db.ContactPut(ctx, c, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		attrs map[string]string
		want  string
	}{
		{map[string]string{"plan": "pro"}, "[a]"},
		{map[string]string{"seats": "42"}, "[a b]"},
		{map[string]string{"trial": "true"}, "[a b]"},
		{map[string]string{"trial": "true", "plan": "free"}, "[b]"},
		{map[string]string{"plan": "null"}, "[c]"},
		{map[string]string{"plan": `"pro"`}, "[]"},
		{map[string]string{"seats": "42.0"}, "[]"},
		{map[string]string{"missing": "x"}, "[]"},
	} {
		p, err := db.ContactList(ctx, &nudge.ContactListParams{Attributes: tc.attrs})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range p.Contacts {
			ids = append(ids, c.ID)
		}
		if got := fmt.Sprint(ids); got != tc.want && !(tc.want == "[]" && len(ids) == 0) {
			t.Errorf("%v: got %v, want %v", tc.attrs, got, tc.want)
		}
	}
}

func TestConsentAndErase(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	if _, _, err := db.ContactPut(ctx, &nudge.Contact{ID: "c1", Phone: "+15551234567"}, now); err != nil {
		t.Fatal(err)
	}
	rs, err := db.ConsentRecord(ctx, []*nudge.ConsentRecordParams{
		{ContactID: "c1", Channel: "sms", Purpose: "marketing", Status: "opted_in", Source: "form", Evidence: nudge.ConsentEvidence{IP: "1.2.3.4", Text: "yes"}},
		{ContactID: "c1", Channel: "sms", Purpose: "marketing", Status: "opted_out", Source: "keyword", Evidence: nudge.ConsentEvidence{Keyword: "STOP"}},
		{ContactID: "c1", Channel: "sms", Purpose: "marketing", Status: "opted_in", Source: "import"},
		{ContactID: "c1", Channel: "email", Purpose: "marketing", Status: "opted_in", Source: "import"},
		{ContactID: "nobody", Channel: "sms", Purpose: "marketing", Status: "opted_in", Source: "import"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "", nudge.ECONFLICT, nudge.EINVALID, nudge.ENOTFOUND} {
		if got := nudge.ErrorCode(rs[i].Err); got != want {
			t.Errorf("[%d]: code %q (%v), want %q", i, got, rs[i].Err, want)
		}
	}
	states, err := db.ConsentList(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Status != "opted_out" || states[0].EntryID != rs[1].Entry.ID {
		t.Errorf("states = %+v", states)
	}
	if err := db.ContactErase(ctx, "c1", now); err != nil {
		t.Fatal(err)
	}
	if err := db.ContactErase(ctx, "c1", now); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("second erase: %v", err)
	}
	all, err := db.ConsentLedger(ctx, &nudge.ConsentLedgerParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ContactID != "" || all[0].Evidence.IP != "" || all[0].Evidence.Text != "yes" {
		t.Errorf("ledger after erase = %+v", all)
	}
	// The STOP outlives the contact: a new contact with the number is still
	// opted out, and an import cannot undo it.
	if _, _, err := db.ContactPut(ctx, &nudge.Contact{ID: "c2", Phone: "+15551234567"}, now); err != nil {
		t.Fatal(err)
	}
	rs, err = db.ConsentRecord(ctx, []*nudge.ConsentRecordParams{
		{ContactID: "c2", Channel: "sms", Purpose: "marketing", Status: "opted_in", Source: "api"},
	}, now)
	if err != nil || nudge.ErrorCode(rs[0].Err) != nudge.ECONFLICT {
		t.Errorf("re-opt-in by api: %v, %v", err, rs[0].Err)
	}
	if l, err := db.ConsentLedger(ctx, &nudge.ConsentLedgerParams{ContactID: "c2"}); err != nil || len(l) != 2 {
		t.Errorf("ledger of c2 by address = %v, %v", l, err)
	}
}

func TestAPIKey(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	k, tok := nudge.NewAPIKey(nudge.RoleIngest, "segment", now)
	if err := db.APIKeyCreate(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := db.APIKeyCreate(ctx, k); nudge.ErrorCode(err) != nudge.ECONFLICT {
		t.Errorf("duplicate create: %v", err)
	}
	id, secret, _ := nudge.ParseAPIToken(tok)
	got, err := db.APIKeyGet(ctx, id)
	if err != nil || !got.Verify(secret) {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if err := db.APIKeyRevoke(ctx, id, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.APIKeyGet(ctx, id); got.Verify(secret) || !got.RevokedAt.Equal(now) {
		t.Errorf("revoked key = %+v", got)
	}
	if err := db.APIKeyRevoke(ctx, "nope", now); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("revoke missing: %v", err)
	}
}
