package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestMain lets this test binary be `nudge` for the harnesses that start
// the server as a child process: with NUDGE_TEST_RUN_MAIN=1 it runs the
// command line it was given instead of the tests. (A first argument
// "serve" means the same: a server must never run the tests, which would
// start servers of their own.)
func TestMain(m *testing.M) {
	if os.Getenv("NUDGE_TEST_RUN_MAIN") == "1" || len(os.Args) > 1 && os.Args[1] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "nudge:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	serveCommand = func(args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
		cmd.Env = append(os.Environ(), "NUDGE_TEST_RUN_MAIN=1")
		return cmd, nil
	}
	os.Exit(m.Run())
}

// TestCrashSafety is the short CI version of `nudge bench crash`: the real
// server, killed with SIGKILL a few times while contacts go through a
// journey that emails and texts them, on each store. The full run is a
// documented command (docs/reliability.md).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the server: not in -short")
	}
	stores := map[string]string{"sqlite": "", "postgres": os.Getenv("NUDGE_TEST_POSTGRES")}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			db := stores[name]
			if name == "postgres" && db == "" {
				t.Skip("NUDGE_TEST_POSTGRES is not set; set it to a PostgreSQL URL to run the crash harness on PostgreSQL")
			}
			var out bytes.Buffer
			o := &crashOptions{db: db, contacts: 300, kills: 6, seed: uint64(time.Now().UnixNano()),
				minUp: 300 * time.Millisecond, maxUp: time.Second, lease: 2 * time.Second, rate: 150, batch: 50,
				drain: 2 * time.Minute, dir: t.TempDir()}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := runCrash(ctx, o, &out)
			if err != nil {
				t.Fatalf("run (seed %d): %v\n%s", o.seed, err, out.String())
			}
			r.print(&out)
			t.Log("\n" + out.String())
			if r.kills < o.kills {
				t.Errorf("killed %d times, want at least %d", r.kills, o.kills)
			}
			if r.sinkTotal["sms"] == 0 || r.sinkTotal["email"] == 0 {
				t.Errorf("sinks received %v: the journey sent nothing", r.sinkTotal)
			}
			if r.enrollments["completed"] == 0 {
				t.Errorf("enrollments %v: none completed", r.enrollments)
			}
			for _, p := range r.problems() {
				t.Errorf("seed %d: %s", o.seed, p)
			}
		})
	}
}
