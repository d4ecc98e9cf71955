package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// BlockedError is a dial refused by the SSRF guard.
type BlockedError struct {
	Host string     // the URL's host
	Addr netip.Addr // the address it resolved to
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("webhook: %s resolves to %s, a loopback, private, link-local or multicast address", e.Host, e.Addr)
}

// blockedPrefixes are the ranges netip.Addr's predicates do not cover.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // RFC 6598 shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("fec0::/10"),          // deprecated site-local
	netip.MustParsePrefix("::ffff:0:0/96"),      // IPv4-mapped, should it reach here unmapped
	netip.MustParsePrefix("2002::/16"),          // 6to4 embeds any IPv4 address
	netip.MustParsePrefix("2001::/32"),          // Teredo embeds any IPv4 address
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

// Blocked reports whether a is an address a user-set URL must not reach.
func Blocked(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// guard decides which dials may go ahead.
type guard struct {
	allowAll bool
	hosts    map[string]bool // lower-case host names allowed whatever they resolve to
	prefixes []netip.Prefix  // address ranges allowed
}

func newGuard(allowPrivate bool, allow []string) (*guard, error) {
	g := &guard{allowAll: allowPrivate, hosts: map[string]bool{}}
	for _, h := range allow {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
		case strings.Contains(h, "/"):
			p, err := netip.ParsePrefix(h)
			if err != nil {
				return nil, fmt.Errorf("webhook: allowed prefix %q: %w", h, err)
			}
			g.prefixes = append(g.prefixes, p.Masked())
		default:
			if a, err := netip.ParseAddr(h); err == nil {
				g.prefixes = append(g.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			} else {
				g.hosts[strings.TrimSuffix(h, ".")] = true
			}
		}
	}
	return g, nil
}

// allowed reports whether a dial of host (the URL's) to addr may proceed.
func (g *guard) allowed(host string, addr netip.Addr) bool {
	if g.allowAll || g.hosts[strings.TrimSuffix(strings.ToLower(host), ".")] {
		return true
	}
	addr = addr.Unmap()
	for _, p := range g.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return !Blocked(addr)
}

// dialContext dials with the guard applied to every address the resolver
// returns, in the dialer's Control function: the address checked is the
// one connected to.
func (g *guard) dialContext(timeout time.Duration) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		d := &net.Dialer{
			Timeout:   timeout,
			KeepAlive: 30 * time.Second,
			Control: func(_, resolved string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(resolved)
				if err != nil {
					return fmt.Errorf("webhook: dial %s: %w", resolved, err)
				}
				if !g.allowed(host, ap.Addr()) {
					return &BlockedError{Host: host, Addr: ap.Addr().Unmap()}
				}
				return nil
			},
		}
		return d.DialContext(ctx, network, address)
	}
}
