package nudge_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/nudge/nudge"
)

// TestAddressHasher: a hasher used for address after address gives each
// the HMAC-SHA256 of its channel, a zero byte and its normalized form, as
// AddressHash does.
func TestAddressHasher(t *testing.T) {
	key := []byte("workspace secret")
	h := nudge.NewAddressHasher(key)
	for _, a := range []struct{ channel, address, normalized string }{
		{nudge.ChannelEmail, " Jane@Example.COM ", "jane@example.com"},
		{nudge.ChannelSMS, "+13125550100", "+13125550100"},
		{nudge.ChannelEmail, "a-much-longer-address-than-one-sha256-block-holds-by-itself@example.com",
			"a-much-longer-address-than-one-sha256-block-holds-by-itself@example.com"},
		{nudge.ChannelEmail, "jane@example.com", "jane@example.com"},
	} {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(a.channel + "\x00" + a.normalized))
		want := hex.EncodeToString(m.Sum(nil))
		if got := h.Hash(a.channel, a.address); got != want {
			t.Errorf("Hash(%s, %q) = %s, want %s", a.channel, a.address, got, want)
		}
		if got := nudge.AddressHash(key, a.channel, a.address); got != want {
			t.Errorf("AddressHash(%s, %q) = %s, want %s", a.channel, a.address, got, want)
		}
	}
}
