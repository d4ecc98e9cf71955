package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tinyDisk mounts a tmpfs of size bytes (root only) and returns its path;
// the test skips, saying why, where it cannot.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("database fault tests mount a small tmpfs, which needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); database fault tests skipped", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", mode, dir, err, out)
	}
}

// batchBody is a Segment batch of n track events of contact c, with
// message ids prefix-0 …
func batchBody(c, prefix string, n int) string {
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","userId":%q,"event":"page.viewed","messageId":"%s-%d","properties":{"pad":%q}}`,
			c, prefix, i, strings.Repeat("p", 400))
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestSQLiteDiskFull: when the disk holding the database fills, ingest
// answers 503 with Retry-After (not 500), keeps what it acknowledged, and
// takes the same batch again once there is room.
func TestSQLiteDiskFull(t *testing.T) {
	dir := tinyDisk(t, "8m")
	m, key := startMain(t, filepath.Join(dir, "nudge.db"))
	c := &client{t: t, base: "http://" + m.ln.Addr().String(), key: key}

	// Fill the disk but for a little room.
	filler := filepath.Join(dir, "filler")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k", "count=1000").CombinedOutput(); err == nil {
		t.Logf("dd filled more than the disk holds?\n%s", out)
	}
	acked, refused := 0, ""
	for i := range 200 {
		body := batchBody("ann", fmt.Sprintf("b%d", i), 20)
		switch st := c.do("POST", "/v1/batch", body, nil); st {
		case 200:
			acked++
			continue
		case 503:
			refused = body
		default:
			t.Fatalf("batch %d on a full disk: status %d; want 200 or 503", i, st)
		}
		break
	}
	if refused == "" {
		t.Fatalf("%d batches taken on a full disk; want a 503", acked)
	}
	if st := c.do("GET", "/healthz", "", nil); st != 200 {
		t.Errorf("/healthz on a full disk: %d; the process should stay up", st)
	}

	os.Remove(filler)
	if st := c.do("POST", "/v1/batch", refused, nil); st != 200 {
		t.Fatalf("the refused batch, once there is room: %d", st)
	}
	var page struct {
		Events []struct {
			MessageID string `json:"message_id"`
		} `json:"events"`
	}
	if st := c.do("GET", "/v1/contacts/ann/events?limit=1000", "", &page); st != 200 {
		t.Fatalf("events: %d", st)
	}
	if want := (acked + 1) * 20; len(page.Events) != want {
		t.Errorf("%d events stored; want %d (%d acknowledged batches and the retried one)", len(page.Events), want, acked)
	}
}

// TestSQLiteReadOnly: a database on a read-only file system is refused at
// start with an error that says so, and the same database starts once the
// file system is writable again, with its data.
func TestSQLiteReadOnly(t *testing.T) {
	dir := tinyDisk(t, "16m")
	db := filepath.Join(dir, "nudge.db")
	m, key := startMain(t, db)
	c := &client{t: t, base: "http://" + m.ln.Addr().String(), key: key}
	if st := c.do("POST", "/v1/batch", batchBody("bob", "before", 5), nil); st != 200 {
		t.Fatalf("batch: %d", st)
	}
	m.Close()

	remount(t, dir, "ro")
	cfg := DefaultConfig()
	cfg.DB, cfg.Addr = db, "127.0.0.1:0"
	ro := &Main{Config: cfg, Stdout: io.Discard}
	err := ro.Run(context.Background())
	if err == nil {
		ro.Close()
		t.Fatal("nudge started on a read-only database")
	}
	if !strings.Contains(err.Error(), "read") {
		t.Errorf("start on a read-only database: %v; want an error that says it is read-only", err)
	}

	remount(t, dir, "rw")
	again := &Main{Config: cfg, Stdout: io.Discard}
	if err := again.Run(context.Background()); err != nil {
		t.Fatalf("start once writable: %v", err)
	}
	defer again.Close()
	c.base = "http://" + again.ln.Addr().String()
	var page struct {
		Events []any `json:"events"`
	}
	if c.do("GET", "/v1/contacts/bob/events?limit=100", "", &page); len(page.Events) != 5 {
		t.Errorf("%d events after the restart; want 5", len(page.Events))
	}
}
