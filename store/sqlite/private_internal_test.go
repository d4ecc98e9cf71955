package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
)

// Slim drops every index and trigger it names (a name that no migration
// creates any more would make it do nothing, silently), keeps the engine's
// statements on their indexes, and leaves a store the engine commits to
// without the report counters.
func TestSlim(t *testing.T) {
	ctx := context.Background()
	shared, err := Open(filepath.Join(t.TempDir(), "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	if err := shared.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shared.Slim(ctx); err == nil {
		t.Error("Slim of a store from Open: no error, want a refusal (the console reads its indexes and reports)")
	}

	db := mustOpenPrivate(t)
	schema := func() map[string]bool {
		t.Helper()
		rows, err := db.read.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type IN ('index', 'trigger')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		names := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names[n] = true
		}
		return names
	}
	dropped := append(append([]string{}, slimIndexes...), slimTriggers...)
	have := schema()
	for _, n := range dropped {
		if !have[n] {
			t.Errorf("the migrated schema has no %s for Slim to drop", n)
		}
	}
	for range 2 { // again: a no-op
		if err := db.Slim(ctx); err != nil {
			t.Fatalf("Slim: %v", err)
		}
	}
	have = schema()
	for _, n := range dropped {
		if have[n] {
			t.Errorf("%s is still there after Slim", n)
		}
	}

	for _, tt := range []struct {
		q     string
		args  []any
		index string
	}{
		{enrollmentsClaimDueQuery, []any{5, 5, 100}, "enrollments_due"},
		{messageRecentQuery, []any{`["c1","c2"]`, 5}, "messages_contact_created"},
		{`SELECT * FROM enrollments WHERE contact_id IN (SELECT value FROM json_each('["c"]')) AND state = 'waiting'
			ORDER BY contact_id, id`, nil, "enrollments_contact"},
		{`UPDATE messages SET status = 'cancelled', updated_at = 5
			WHERE enrollment_id IN (SELECT value FROM json_each('["e"]')) AND +status = 'queued'`, nil, "messages_enrollment"},
		{`SELECT * FROM decisions WHERE id > 5 ORDER BY id LIMIT 100`, nil, ""},
	} {
		plan := ExplainPlan(t, db.read, tt.q, tt.args...)
		if tt.index != "" && !strings.Contains(plan, "INDEX "+tt.index+" ") {
			t.Errorf("%s\nplan: %s; want a search of %s", tt.q, plan, tt.index)
		}
		for _, table := range []string{"enrollments", "messages", "decisions", "contacts", "events"} {
			if strings.Contains(plan, "SCAN "+table) {
				t.Errorf("%s\nplan: %s; want no scan of %s", tt.q, plan, table)
			}
		}
	}

	// The engine commits as before; nothing counts it for reports.
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	src := "id: j\nname: J\n"
	sum := sha256.Sum256([]byte(src))
	if _, _, err := db.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "j", Name: "J", Source: []byte(src), Hash: hex.EncodeToString(sum[:])}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c1"}}, now); err != nil {
		t.Fatal(err)
	}
	e := &nudge.Enrollment{ID: "e1", JourneyID: "j", Version: 1, ContactID: "c1", State: nudge.EnrollmentCompleted}
	d := &nudge.Decision{ContactID: "c1", JourneyID: "j", Version: 1, EnrollmentID: "e1",
		Outcome: nudge.OutcomeCompleted, Reason: "completed", Message: "Completed."}
	if err := db.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}, Decisions: []*nudge.Decision{d}}, now); err != nil {
		t.Fatalf("EngineCommit: %v", err)
	}
	ds, err := db.DecisionList(ctx, &nudge.DecisionListParams{})
	if err != nil || len(ds) != 1 || ds[0].EnrollmentID != "e1" {
		t.Errorf("DecisionList = %v, %v; want the one decision committed", ds, err)
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM report_cohorts) + (SELECT count(*) FROM report_outcomes)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("report counter rows = %d, %v; want none on a slim store", n, err)
	}
}

// ExplainPlan returns SQLite's query plan of q on db, its steps joined by
// "; " (the external tests' explain too).
func ExplainPlan(t testing.TB, db interface {
	Query(string, ...any) (*sql.Rows, error)
}, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// A private store's transactions are savepoints of one open transaction:
// what they released is kept when the store is closed and opened again, and
// once SQLite has rolled the whole transaction back, every later
// transaction fails instead of going on without what was lost.
func TestPrivateTransactions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "private.db")
	db, err := OpenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c1"}}, now); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, err = OpenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ContactGet(ctx, "c1"); err != nil {
		t.Fatalf("ContactGet after reopening: %v; want the contact merged before Close", err)
	}
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c2"}}, now); err != nil {
		t.Fatal(err)
	}
	// What an interrupted write does: the whole transaction rolls back.
	if _, err := db.write.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c3"}}, now); !errors.Is(err, errPrivateLost) {
		t.Errorf("ContactMerge after the transaction was rolled back: %v; want %v", err, errPrivateLost)
	}
}

// A private store's inbox is in memory, and a transaction that rolls back
// takes its changes to the inbox with it: a commit that fails after
// merging a contact leaves neither the contact's change nor the removal of
// the items it consumed, and its file's inbox table stays empty.
func TestPrivateInbox(t *testing.T) {
	ctx := context.Background()
	db := mustOpenPrivate(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const lease = time.Minute
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c1"}}, now); err != nil {
		t.Fatal(err)
	}
	items, err := db.InboxClaim(ctx, now, 10, lease)
	if err != nil || len(items) != 1 {
		t.Fatalf("InboxClaim = %d items, %v; want the contact's creation", len(items), err)
	}
	// The second item does not exist: the commit fails after its patch.
	err = db.EngineCommit(ctx, &nudge.EngineCommit{
		ContactPatches: []*nudge.ContactPatch{{ID: "c1", Attributes: map[string]any{"plan": "pro"}}},
		InboxDone:      []int64{items[0].Seq, items[0].Seq + 1},
	}, now)
	if nudge.ErrorCode(err) != nudge.ECONFLICT {
		t.Fatalf("EngineCommit consuming a missing item: %v; want ECONFLICT", err)
	}
	c, err := db.ContactGet(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Attributes["plan"]; ok {
		t.Errorf("the failed commit's patch was kept: %v", c.Attributes)
	}
	later := now.Add(2 * lease)
	if pending, err := db.InboxPending(ctx, now); err != nil || pending {
		t.Errorf("InboxPending within the claim = %v, %v; want false", pending, err)
	}
	again, err := db.InboxClaim(ctx, later, 10, lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].Seq != items[0].Seq || again[0].After == nil || again[0].Before != nil {
		t.Fatalf("InboxClaim after the lease = %+v; want only the creation of c1 again", again)
	}
	if err := db.EngineCommit(ctx, &nudge.EngineCommit{InboxDone: []int64{again[0].Seq}}, later); err != nil {
		t.Fatal(err)
	}
	if pending, err := db.InboxPending(ctx, later.Add(time.Hour)); err != nil || pending {
		t.Errorf("InboxPending after the item was consumed = %v, %v; want false", pending, err)
	}
	var rows int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM inbox`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the file's inbox table has %d rows (%v); want none", rows, err)
	}
}

// A private store's transaction whose context is cancelled part way is
// rolled back in order: a change staged to the in-memory inbox after the
// cancel is dropped with it, and the inbox is not left locked. (When the
// transaction watched its context, database/sql rolled it back from its
// own goroutine, the staged erase below was never ended, and the next
// InboxPending blocked for ever.)
func TestPrivateInboxCancelledTransaction(t *testing.T) {
	ctx := context.Background()
	db := mustOpenPrivate(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: "c1"}}, now); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	err := db.inTx(cctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(cctx, `SELECT 1`); err != nil {
			return err
		}
		cancel()
		time.Sleep(20 * time.Millisecond) // time for a watcher of the context to roll back
		db.inbox.erase("c1")              // as ContactErase stages before its last statement
		_, err := tx.ExecContext(cctx, `DELETE FROM contacts WHERE id = 'c1'`)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("inTx after a cancel = %v; want context.Canceled", err)
	}
	done := make(chan error, 1)
	var pending bool
	go func() {
		var err error
		pending, err = db.InboxPending(ctx, now)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || !pending {
			t.Errorf("InboxPending = %v, %v; want the contact's creation still there (the erase was rolled back)", pending, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("InboxPending blocked: the cancelled transaction left the in-memory inbox locked")
	}
	if _, err := db.ContactGet(ctx, "c1"); err != nil {
		t.Errorf("the contact after the rolled-back erase: %v", err)
	}
}

// A private inbox's item gives its contacts as decoding their JSON (the
// inbox table's form) would, whether it keeps a copy or, for a contact a
// copy would not match, the JSON.
func TestPrivateInboxContacts(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	attrs := func() map[string]any {
		return map[string]any{"n": 3.5, "big": 1e21, "s": "é<>&", "ok": true, "none": nil,
			"list": []any{1.0, "two", map[string]any{"x": []any{}}}, "obj": map[string]any{"y": false}}
	}
	for name, c := range map[string]*nudge.Contact{
		"stored":            {ID: "c1", Email: "a@example.com", Phone: "+14155550100", Timezone: "Europe/Paris", IsCustomer: true, Attributes: attrs(), CreatedAt: at, UpdatedAt: at},
		"no attributes":     {ID: "c2", CreatedAt: at, UpdatedAt: at},
		"not UTF-8":         {ID: "c3", Email: "a\xffb@example.com", Attributes: attrs(), CreatedAt: at, UpdatedAt: at},
		"not UTC":           {ID: "c4", Attributes: attrs(), CreatedAt: at.In(paris), UpdatedAt: at},
		"not a JSON number": {ID: "c5", Attributes: map[string]any{"n": 3}, CreatedAt: at, UpdatedAt: at},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var want *nudge.Contact
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if want.Attributes == nil {
				want.Attributes = map[string]any{}
			}
			kept, err := keepContact(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kept.get()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("the item's contact (-decoded JSON +got):\n%s", d)
			}
			// Each claim gets its own: changing one changes no other.
			got.Attributes["new"] = true
			if again, _ := kept.get(); again.Attributes["new"] != nil {
				t.Error("a change to one claim's contact shows in the next")
			}
		})
	}
}

// mustOpenPrivate opens a migrated private store in a temporary directory,
// closed when the test ends.
func mustOpenPrivate(t *testing.T) *DB {
	t.Helper()
	db, err := OpenPrivate(filepath.Join(t.TempDir(), "private.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}
