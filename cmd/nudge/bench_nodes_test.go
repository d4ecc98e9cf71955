package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestNodesShort is the CI version of `nudge bench nodes`: two servers on
// one PostgreSQL share the events, the engine and delivery; one is killed
// mid-run and not restarted. The other must finish its claimed work once
// the lease expires, with nothing processed twice and nothing lost.
func TestNodesShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers: not in -short")
	}
	db := os.Getenv("NUDGE_TEST_POSTGRES")
	if db == "" {
		t.Skip("NUDGE_TEST_POSTGRES is not set; several nodes need PostgreSQL")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, took, err := runNodes(ctx, db, 2, 1000, 3*time.Second, true, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	r.print(&out)
	t.Logf("finished in %s\n%s", took, out.String())
	if r.kills != 1 {
		t.Errorf("%d nodes killed, want 1", r.kills)
	}
	if r.sinkTotal["sms"] == 0 || r.sinkTotal["email"] == 0 {
		t.Errorf("sinks received %v: the journey sent nothing", r.sinkTotal)
	}
	for _, p := range r.problems() {
		t.Error(p)
	}
}
