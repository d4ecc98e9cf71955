package postgres

import (
	"slices"
	"strings"

	"github.com/nudge/nudge"
)

// suppressionSources are the valid sources of a suppression.
var suppressionSources = []string{nudge.SourceAPI, nudge.SourceImport, nudge.SourceAdmin, nudge.SourceProvider}

// reasonChannels limits the reasons that only one channel can have.
var reasonChannels = map[string]string{
	nudge.SuppressHardBounce:     nudge.ChannelEmail,
	nudge.SuppressComplaint:      nudge.ChannelEmail,
	nudge.SuppressProviderOptOut: nudge.ChannelSMS,
	nudge.SuppressUnreachable:    nudge.ChannelSMS,
}

// oneOf returns an EINVALID error about field unless v is one of valid.
func oneOf(field, v string, valid []string) error {
	if slices.Contains(valid, v) {
		return nil
	}
	return nudge.FieldErrorf(field, "%q is not one of %s", v, strings.Join(valid, ", "))
}

// checkSuppression validates p and returns its normalized address.
func checkSuppression(p *nudge.SuppressionAddParams) (string, error) {
	if p == nil {
		return "", nudge.Errorf(nudge.EINVALID, "suppression required")
	}
	if err := oneOf("channel", p.Channel, nudge.Channels); err != nil {
		return "", err
	}
	if err := oneOf("reason", p.Reason, nudge.SuppressionReasons); err != nil {
		return "", err
	}
	if ch := reasonChannels[p.Reason]; ch != "" && ch != p.Channel {
		return "", nudge.FieldErrorf("reason", "%s applies to %s addresses only", p.Reason, ch)
	}
	if err := oneOf("source", p.Source, suppressionSources); err != nil {
		return "", err
	}
	return checkAddress(p.Channel, p.Address)
}

// checkAddress returns the normalized form of an address of a channel, or
// an EINVALID error. The address is not quoted in the error: it is
// personal data.
func checkAddress(channel, address string) (string, error) {
	a := nudge.NormalizeAddress(channel, address)
	if a == "" {
		return "", nudge.FieldErrorf("address", "required")
	}
	switch channel {
	case nudge.ChannelEmail:
		local, domain, ok := strings.Cut(a, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@ ") {
			return "", nudge.FieldErrorf("address", "not an email address")
		}
	case nudge.ChannelSMS:
		if len(a) < 2 || a[0] != '+' || strings.Trim(a[1:], "0123456789") != "" {
			return "", nudge.FieldErrorf("address", "not an E.164 phone number (+ and digits)")
		}
	}
	return a, nil
}

// maskAddress hides most of a normalized address, keeping enough for a
// person to recognise it: a phone number's first 5 and last 4 characters
// ("+1415•••2671"; a shorter number keeps less), an email address's first 2
// characters and its domain ("ja•••@example.com"; a local part of 2 or
// fewer keeps less).
func maskAddress(channel, a string) string {
	const dots = "•••"
	if channel == nudge.ChannelEmail {
		local, domain, _ := strings.Cut(a, "@")
		r := []rune(local)
		return string(r[:min(2, max(0, len(r)-1))]) + dots + "@" + domain
	}
	r := []rune(a)
	if len(r) >= 10 {
		return string(r[:5]) + dots + string(r[len(r)-4:])
	}
	k := len(r) / 4
	return string(r[:k]) + dots + string(r[len(r)-k:])
}
