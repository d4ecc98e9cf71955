package nudgetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge/store/postgres"
)

// Postgres returns a migrated PostgreSQL store in a fresh schema of the
// server named by NUDGE_TEST_POSTGRES, dropped when the test ends. It skips
// the test when the variable is not set, and fails it when the server cannot
// be reached: CI sets the variable on purpose.
func Postgres(t testing.TB) *postgres.DB {
	t.Helper()
	base := os.Getenv("NUDGE_TEST_POSTGRES")
	if base == "" {
		t.Skip("NUDGE_TEST_POSTGRES is not set; set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin, err := postgres.Open(ctx, base)
	if err != nil {
		t.Fatalf("NUDGE_TEST_POSTGRES: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "nudge_test_" + hex.EncodeToString(b)
	if err := admin.CreateSchema(ctx, schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	db, err := postgres.Open(ctx, WithSearchPath(base, schema))
	if err != nil {
		admin.DropSchema(ctx, schema)
		admin.Close()
		t.Fatalf("open test schema: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin.DropSchema(ctx, schema); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		admin.Close()
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test schema: %v", err)
	}
	return db
}

// WithSearchPath returns the PostgreSQL connection string dsn (a URL or a
// key/value string) with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}
