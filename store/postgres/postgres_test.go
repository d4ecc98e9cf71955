package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/postgres"
)

func TestOpenUnreachable(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	db, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?connect_timeout=2")
	if err == nil {
		db.Close()
		t.Fatal("Open of 127.0.0.1:1 succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
	if got := nudge.ErrorCode(err); got != nudge.EUNAVAILABLE {
		t.Errorf("ErrorCode = %q, want %q (err: %v)", got, nudge.EUNAVAILABLE, err)
	}
	if !strings.Contains(err.Error(), "cannot connect to the database at 127.0.0.1:1") {
		t.Errorf("error does not say what it could not reach: %v", err)
	}
}

func TestOpenDefaultTimeout(t *testing.T) {
	// No connect_timeout in the URL: a refused connection still fails at
	// once, and an address that swallows packets fails within the default.
	start := time.Now()
	_, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/test")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("Open = %v after %v", err, time.Since(start))
	}
}

func TestOpenBadURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:secret@host:notaport/db")
	if err == nil {
		t.Fatal("Open of a bad URL succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestMigrate(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != postgres.LatestSchemaVersion() {
		t.Errorf("SchemaVersion = %d, want %d", v, postgres.LatestSchemaVersion())
	}
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("second Migrate: %v", err)
	}
}

func TestMigrateNewerSchema(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	future := postgres.LatestSchemaVersion() + 6
	if err := db.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, future); err != nil {
		t.Fatal(err)
	}
	err := db.Migrate(ctx)
	want := fmt.Sprintf("database schema version %d is newer than this nudge binary supports (%d); upgrade nudge", future, postgres.LatestSchemaVersion())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Migrate = %v, want an error saying %q", err, want)
	}
}

// TestMigrateConcurrent starts several nodes on one fresh schema at once:
// each migration must be applied once.
func TestMigrateConcurrent(t *testing.T) {
	base := os.Getenv("NUDGE_TEST_POSTGRES")
	admin := nudgetest.Postgres(t) // skips without a server
	ctx := context.Background()
	schema := fmt.Sprintf("nudge_test_concurrent_%d", time.Now().UnixNano())
	if err := admin.CreateSchema(ctx, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.DropSchema(context.Background(), schema) })
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := postgres.Open(ctx, nudgetest.WithSearchPath(base, schema))
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.Migrate(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	db, err := postgres.Open(ctx, nudgetest.WithSearchPath(base, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != postgres.LatestSchemaVersion() {
		t.Errorf("SchemaVersion = %d, %v", v, err)
	}
}

// After the server ended every session of the pool (an administrator, a
// failover), one Ping tells the server's state: it answers from a new
// session, not with the error of a session already gone. (/readyz asks
// Ping; it said "the database does not answer" to the first probe after a
// failover, with the server up.)
func TestPingAfterSessionsEnded(t *testing.T) {
	db := nudgetest.Postgres(t)
	ctx := context.Background()
	pids, err := db.BackendPIDs(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, os.Getenv("NUDGE_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after the server ended the pool's sessions: %v; want nil (the server is up)", err)
	}
}
