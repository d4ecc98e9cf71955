package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/sqlite"
	"github.com/nudge/nudge/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nudge.Store { return nudgetest.SQLite(t) })
}

// rawDB opens the file with database/sql directly, to look behind the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0", v, err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != sqlite.LatestSchemaVersion() {
		t.Fatalf("SchemaVersion after Migrate = %d, %v; want %d", v, err, sqlite.LatestSchemaVersion())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A newer nudge migrated the file one version past this one's.
	newer := sqlite.LatestSchemaVersion() + 1
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, newer); err != nil {
		t.Fatal(err)
	}

	db, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Migrate(ctx)
	want := fmt.Sprintf("database schema version %d is newer than this nudge binary supports (%d); upgrade nudge",
		newer, sqlite.LatestSchemaVersion())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Migrate of a newer schema: %v; want an error containing %q", err, want)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != newer {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, newer)
	}
}

func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := rawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestWorkspaceSecretSurvivesReopen(t *testing.T) {
	// Consent recorded before a restart must still match the address after
	// it: the secret is stored, not made per process.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := nudgetest.Epoch
	if _, _, err := db.ContactPut(ctx, &nudge.Contact{ID: "c1", Phone: "+15550100"}, now); err != nil {
		t.Fatal(err)
	}
	rs, err := db.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: "c1", Channel: nudge.ChannelSMS,
		Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword}}, now)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("ConsentRecord: %v, %v", err, rs)
	}
	db.Close()

	db, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	states, err := db.ConsentList(ctx, "c1")
	if err != nil || len(states) != 1 || states[0].Status != nudge.ConsentOptedOut {
		t.Errorf("ConsentList after reopen = %v, %v; want the opt-out", states, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	// Writers from many goroutines queue on the single writer connection
	// rather than failing with SQLITE_BUSY, while readers read.
	ctx := context.Background()
	db := nudgetest.SQLite(t)
	now := nudgetest.Epoch
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if _, err := db.ContactMerge(ctx, []*nudge.ContactPatch{{ID: id}}, now); err != nil {
					errs <- err
					return
				}
				items := []nudge.IngestItem{{Event: &nudge.Event{MessageID: id, Type: nudge.EventTrack,
					ContactID: id, Name: "a", Timestamp: now}}}
				if _, err := db.EventIngest(ctx, items, now); err != nil {
					errs <- err
					return
				}
				if _, err := db.ContactList(ctx, &nudge.ContactListParams{Limit: 10}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	page, err := db.ContactList(ctx, &nudge.ContactListParams{Limit: 1000})
	if err != nil || len(page.Contacts) != 160 {
		t.Errorf("ContactList = %d contacts, %v; want 160", len(page.Contacts), err)
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	// The schema itself refuses edits of the consent ledger other than
	// erasure's, whoever writes to the file.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := nudgetest.Epoch
	if _, _, err := db.ContactPut(ctx, &nudge.Contact{ID: "c1", Phone: "+15550100"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{ContactID: "c1", Channel: nudge.ChannelSMS,
		Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword}}, now); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, q := range []string{
		`UPDATE consent_ledger SET status = 'opted_in'`,
		`UPDATE consent_ledger SET evidence = '{}'`, // without erasing the contact id
		`DELETE FROM consent_ledger`,
	} {
		if _, err := raw.Exec(q); err == nil {
			t.Errorf("%s: succeeded, want refused", q)
		}
	}
}

// BenchmarkEventIngest ingests calls of 100 track events for 1000 contacts,
// the shape of a Segment batch.
func BenchmarkEventIngest(b *testing.B) {
	ctx := context.Background()
	db := nudgetest.SQLite(b)
	now := nudgetest.Epoch
	const perCall = 100
	items := make([]nudge.IngestItem, perCall)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range items {
			n++
			items[i] = nudge.IngestItem{Event: &nudge.Event{
				MessageID:  fmt.Sprintf("msg-%09d", n),
				Type:       nudge.EventTrack,
				ContactID:  fmt.Sprintf("contact-%04d", n%1000),
				Name:       "page.viewed",
				Properties: map[string]any{"path": "/pricing", "title": "Pricing", "referrer": "https://example.com/"},
				Context:    map[string]any{"ip": "203.0.113.9", "library": map[string]any{"name": "analytics.js"}},
				Timestamp:  now.Add(time.Duration(n) * time.Millisecond),
			}}
		}
		if _, err := db.EventIngest(ctx, items, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestQueryPlans(t *testing.T) {
	// The hot lists are read in index order: no sort, no scan.
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, q := range []string{
		`SELECT * FROM events WHERE contact_id = 'c' ORDER BY timestamp DESC, seq DESC LIMIT 51`,
		`SELECT * FROM events WHERE contact_id = 'c' AND timestamp <= 5 AND (timestamp < 5 OR seq < 3)
			ORDER BY timestamp DESC, seq DESC LIMIT 51`,
		`SELECT * FROM contacts WHERE lifecycle_stage = 'lead' AND id > 'c' ORDER BY id LIMIT 51`,
		`SELECT * FROM contacts WHERE email = 'ann@example.com' ORDER BY id LIMIT 51`,
		`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < 5 LIMIT 10000)`,
	} {
		p := explain(t, raw, q)
		if strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "SCAN ") {
			t.Errorf("%s\nplan: %s; want an index search without a sort", q, p)
		}
	}

	// The engine's statements search the index named, without a sort.
	for _, tt := range []struct{ q, index string }{
		{`SELECT e.id FROM enrollments e JOIN journeys j ON j.id = e.journey_id
			WHERE e.state = 'waiting' AND e.wake_at <= 5 AND j.status = 'active'
				AND (e.claimed_until IS NULL OR e.claimed_until < 5)
			ORDER BY e.wake_at, e.id LIMIT 100`, "enrollments_due"},
		{`SELECT * FROM enrollments WHERE contact_id = 'c' AND state = 'waiting' AND id > 'a' ORDER BY id LIMIT 100`,
			"enrollments_contact"},
		{`SELECT * FROM enrollments WHERE contact_id IN (SELECT value FROM json_each('["c"]')) AND state = 'waiting'
			ORDER BY contact_id, id`, "enrollments_contact"},
		{`SELECT * FROM enrollments WHERE journey_id = 'j' AND id > 'a' ORDER BY id LIMIT 100`, "enrollments_journey"},
		{`SELECT * FROM decisions WHERE contact_id = 'c' AND id > 5 ORDER BY id LIMIT 100`, "decisions_contact"},
		{`SELECT * FROM decisions WHERE enrollment_id = 'e' ORDER BY id LIMIT 100`, "decisions_enrollment"},
		{`SELECT * FROM messages WHERE contact_id = 'c' ORDER BY id LIMIT 100`, "messages_contact"},
		{`SELECT id FROM messages INDEXED BY messages_queued
			WHERE status = 'queued' AND available_at <= 5 AND (claimed_until IS NULL OR claimed_until < 5)
			ORDER BY available_at, id LIMIT 100`, "messages_queued"},
		{`SELECT * FROM messages WHERE channel = 'sms' AND provider_id = 'SM1' AND provider_id <> ''
			ORDER BY id DESC LIMIT 1`, "messages_provider"},
		{`INSERT INTO message_statuses (message_id, status, at) SELECT id, 'cancelled', 5 FROM messages
			WHERE enrollment_id IN (SELECT value FROM json_each('["e"]')) AND +status = 'queued'`,
			"messages_enrollment"},
		{`UPDATE messages SET status = 'cancelled', updated_at = 5
			WHERE enrollment_id IN (SELECT value FROM json_each('["e"]')) AND +status = 'queued'`, "messages_enrollment"},
	} {
		p := explain(t, raw, tt.q)
		if strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "USING INDEX "+tt.index+" ") {
			t.Errorf("%s\nplan: %s; want a search of %s without a sort", tt.q, p, tt.index)
		}
	}

	// Bound as the store binds it: with a parameter for the contact ids,
	// SQLite chose the status index and read the whole outbox.
	if p := explain(t, raw, sqlite.MessageRecentQuery, `["c1","c2"]`, 5); !strings.Contains(p, "messages_contact_created") || strings.Contains(p, "messages_status") {
		t.Errorf("MessageRecent plan: %s; want a search of messages_contact_created, not of messages_status", p)
	}
}

// explain returns SQLite's query plan of q, its steps joined by "; ".
func explain(t *testing.T, raw *sql.DB, q string, args ...any) string {
	t.Helper()
	return sqlite.ExplainPlan(t, raw, q, args...)
}
