package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge/nudgetest"
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

// TestPostgresReadOnly: when PostgreSQL stops taking writes while Nudge runs
// (a failover left it on a standby, or default_transaction_read_only was
// turned on), ingest answers 503 (not 500) with Retry-After, /readyz says the
// database is read-only, the process stays up, and once writes are allowed
// again the refused batch is taken and nothing acknowledged is lost.
func TestPostgresReadOnly(t *testing.T) {
	base := os.Getenv("NUDGE_TEST_POSTGRES")
	if base == "" {
		t.Skip("NUDGE_TEST_POSTGRES is not set; set it to a PostgreSQL URL to run the read-only PostgreSQL test")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("NUDGE_TEST_POSTGRES: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	role := "nudge_ro_" + hex.EncodeToString(b)
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE ROLE " + role + " LOGIN")
	exec("CREATE SCHEMA " + role + " AUTHORIZATION " + role)
	t.Cleanup(func() {
		admin, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer admin.Close(context.Background())
		admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
		admin.Exec(context.Background(), "DROP SCHEMA "+role+" CASCADE")
		admin.Exec(context.Background(), "DROP ROLE "+role)
	})
	// writable switches the role's sessions, and drops the ones it has, as
	// a failover does: the pool reconnects into the new setting.
	writable := func(on bool) {
		t.Helper()
		if on {
			exec("ALTER ROLE " + role + " RESET default_transaction_read_only")
		} else {
			exec("ALTER ROLE " + role + " SET default_transaction_read_only = on")
		}
		exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'")
	}

	u, err := url.Parse(nudgetest.WithSearchPath(base, role))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	m, key := startMain(t, u.String(), func(m *Main) { m.Logger = slog.New(slog.NewTextHandler(t.Output(), nil)) })
	c := &client{t: t, base: "http://" + m.ln.Addr().String(), key: key}
	if st := c.do("POST", "/v1/batch", batchBody("bob", "before", 5), nil); st != 200 {
		t.Fatalf("batch before the fault: %d", st)
	}

	writable(false)
	refused := batchBody("bob", "during", 5)
	for i := range 3 {
		req, _ := http.NewRequest("POST", c.base+"/v1/batch", strings.NewReader(refused))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("batch %d on a read-only database: %v", i, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("batch %d on a read-only database: %d (Retry-After %q) %s; want 503 with Retry-After",
				i, resp.StatusCode, resp.Header.Get("Retry-After"), data)
		}
	}
	var ready struct {
		Error struct{ Code, Message string }
	}
	if st := c.do("GET", "/readyz", "", &ready); st != 503 || !strings.Contains(ready.Error.Message, "read-only") {
		t.Errorf("/readyz on a read-only database: %d %+v; want 503 saying it is read-only", st, ready.Error)
	}
	if st := c.do("GET", "/healthz", "", nil); st != 200 {
		t.Errorf("/healthz on a read-only database: %d; the process should stay up", st)
	}

	writable(true)
	st := 0
	for range 50 { // the first tries may meet the connections the switch dropped
		if st = c.do("POST", "/v1/batch", refused, nil); st == 200 {
			break
		}
		if st != 503 {
			t.Fatalf("the refused batch, once writable: %d; want 200 (or 503 while reconnecting)", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st != 200 {
		t.Fatalf("the refused batch was still refused once the database took writes again: %d", st)
	}
	if st := c.do("GET", "/readyz", "", nil); st != 200 {
		t.Errorf("/readyz once writable: %d", st)
	}
	var page struct {
		Events []any `json:"events"`
	}
	if c.do("GET", "/v1/contacts/bob/events?limit=100", "", &page); len(page.Events) != 10 {
		t.Errorf("%d events stored; want 10 (5 before the fault, 5 retried after it)", len(page.Events))
	}
}
