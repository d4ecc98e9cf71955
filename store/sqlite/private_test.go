package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/sqlite"
	"github.com/nudge/nudge/store/storetest"
)

// TestStorePrivate runs the conformance suite on a store opened with
// OpenPrivate: one connection for reads and writes, no sync.
func TestStorePrivate(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nudge.Store {
		db, err := sqlite.OpenPrivate(filepath.Join(t.TempDir(), "private.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db
	})
}
