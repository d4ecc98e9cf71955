package main

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Close stops the webhook dispatcher too (which stores the events it holds
// before the store closes): no pass of it runs on after the server stopped.
func TestCloseStopsDispatcher(t *testing.T) {
	m, _ := startMain(t, filepath.Join(t.TempDir(), "nudge.db"))
	if m.dispatch.Load() == nil {
		t.Fatal("the server started no webhook dispatcher")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// A goroutine that has returned may take a moment to leave the list.
	var stacks string
	for range 50 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "webhook.(*Dispatcher).loop") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the webhook dispatcher's loop still runs after Close")
}
