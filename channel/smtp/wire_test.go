package smtp

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLineFastPaths: sevenBit and body give, for text with LF line ends
// only, what their byte-at-a-time forms give.
func TestLineFastPaths(t *testing.T) {
	pieces := []string{"a", "Hello, Ada. ", ".", "..", "\n", "\n.", "\x00", "é", "\x7f", "<p>", strings.Repeat("x", 997), strings.Repeat("y", 999)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := sevenBit(s), sevenBitAny(s); got != want {
			t.Fatalf("sevenBit(%q) = %v, byte at a time %v", s, got, want)
		}
		var fast, slow wire
		fast.body(s)
		slow.bodyAny(s)
		if string(fast.b) != string(slow.b) {
			t.Fatalf("body(%q) = %q, byte at a time %q", s, fast.b, slow.b)
		}
	}
}
