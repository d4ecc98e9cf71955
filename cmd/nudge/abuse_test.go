package main

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerLimits: the server itself refuses header floods (431) and
// hangs up on a client that sends its headers too slowly (slow loris),
// without help from a proxy in front.
func TestServerLimits(t *testing.T) {
	t.Parallel() // the slow client waits out the real header timeout
	m, _ := startMain(t, filepath.Join(t.TempDir(), "nudge.db"))
	addr := m.ln.Addr().String()

	t.Run("header flood", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b strings.Builder
		b.WriteString("GET /healthz HTTP/1.1\r\nHost: nudge\r\n")
		for i := range 2000 {
			fmt.Fprintf(&b, "X-Flood-%d: %s\r\n", i, strings.Repeat("a", 64))
		}
		b.WriteString("\r\n")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "431") {
			t.Errorf("answer to %d KB of headers = %q, %v; want 431", b.Len()>>10, line, err)
		}
	})

	t.Run("slow loris", func(t *testing.T) {
		timeout := m.srv.ReadHeaderTimeout
		if timeout <= 0 || timeout > 30*time.Second {
			t.Fatalf("ReadHeaderTimeout = %v; want set, at most 30s", timeout)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: nudge\r\n"))
		c.SetReadDeadline(start.Add(timeout + 10*time.Second))
		_, err = c.Read(make([]byte, 512))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the server held a half-sent request open for %v", timeout+10*time.Second)
		}
	})
}
