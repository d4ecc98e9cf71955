package webhook

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/nudge/nudge"
)

// CheckURL says, when a URL is saved (a subscription, a journey's webhook
// step), whether calls to it could ever be allowed: an http or https URL
// whose host is not a loopback, private or link-local address written out,
// nor localhost, unless the same allowances as the dial guard's
// (Config.AllowPrivate, Config.AllowHosts) admit it. The dial guard still
// checks every address a name resolves to when the call is made; this
// only turns the plain attempts into a clear error at once.
func CheckURL(raw string, allowPrivate bool, allowHosts []string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nudge.FieldErrorf("url", "%q is not an http or https URL", raw)
	}
	if u.User != nil {
		return nudge.FieldErrorf("url", "credentials in the URL are not allowed; the payload is signed instead")
	}
	g, err := newGuard(allowPrivate, allowHosts)
	if err != nil {
		return err
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	addr, err := netip.ParseAddr(host)
	if err != nil { // a name: only localhost is known without resolving it
		if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !g.allowed(host, netip.IPv6Loopback()) {
			return nudge.FieldErrorf("url", "%s is this machine; webhooks may not call it", host)
		}
		return nil
	}
	if !g.allowed(host, addr) {
		return nudge.FieldErrorf("url", "%s is a loopback, private, link-local or reserved address; webhooks may not call it", addr)
	}
	return nil
}
