package nudgetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nudge/nudge/store/sqlite"
)

// SQLite returns a migrated SQLite store on a fresh file in t.TempDir, in WAL
// mode as in production, closed when the test ends.
func SQLite(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "nudge.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate sqlite store: %v", err)
	}
	return db
}
