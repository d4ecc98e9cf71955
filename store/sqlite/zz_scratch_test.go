package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/sqlite"
)

func BenchmarkScratch(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "x.db")
	db, _ := sqlite.Open(path)
	defer db.Close()
	db.Migrate(ctx)
	raw, _ := sql.Open("sqlite", path)
	for _, q := range strings.Split(os.Getenv("XDROP"), ";") {
		if q != "" {
			if _, err := raw.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
	}
	raw.Close()
	now := nudgetest.Epoch
	items := make([]nudge.IngestItem, 100)
	n := 0
	same := os.Getenv("XSAME") != ""
	for b.Loop() {
		for i := range items {
			n++
			c := fmt.Sprintf("contact-%04d", n%1000)
			if same {
				c = "c"
			}
			items[i] = nudge.IngestItem{Event: &nudge.Event{
				MessageID: fmt.Sprintf("msg-%09d", n), Type: nudge.EventTrack, ContactID: c, Name: "page.viewed",
				Properties: map[string]any{"path": "/pricing"}, Timestamp: now.Add(time.Duration(n) * time.Millisecond)}}
		}
		if _, err := db.EventIngest(ctx, items, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
