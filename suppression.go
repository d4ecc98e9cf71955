package nudge

import (
	"fmt"
	"slices"
	"strings"
)

// SuppressionSources are the valid sources of a suppression.
var SuppressionSources = []string{SourceAPI, SourceImport, SourceAdmin, SourceProvider}

// reasonChannels limits the reasons that only one channel can have.
var reasonChannels = map[string]string{
	SuppressHardBounce:     ChannelEmail,
	SuppressComplaint:      ChannelEmail,
	SuppressProviderOptOut: ChannelSMS,
	SuppressUnreachable:    ChannelSMS,
}

// OneOf returns an EINVALID error about field unless v is one of valid.
func OneOf(field, v string, valid []string) error {
	if slices.Contains(valid, v) {
		return nil
	}
	return FieldErrorf(field, "%q is not one of %s", v, strings.Join(valid, ", "))
}

// CheckSuppression validates p and returns its normalized address.
func CheckSuppression(p *SuppressionAddParams) (string, error) {
	if p == nil {
		return "", Errorf(EINVALID, "suppression required")
	}
	if err := OneOf("channel", p.Channel, Channels); err != nil {
		return "", err
	}
	if err := OneOf("reason", p.Reason, SuppressionReasons); err != nil {
		return "", err
	}
	if ch := reasonChannels[p.Reason]; ch != "" && ch != p.Channel {
		return "", FieldErrorf("reason", "%s applies to %s addresses only", p.Reason, ch)
	}
	if err := OneOf("source", p.Source, SuppressionSources); err != nil {
		return "", err
	}
	return CheckAddress(p.Channel, p.Address)
}

// CheckSuppressions validates a batch and returns its normalized addresses,
// in order; an error names the item at fault (suppressions[i].field) when
// there are several.
func CheckSuppressions(ps []*SuppressionAddParams) ([]string, error) {
	addrs := make([]string, len(ps))
	for i, p := range ps {
		a, err := CheckSuppression(p)
		if err != nil {
			if len(ps) > 1 {
				err = WithField(fmt.Sprintf("suppressions[%d]", i), err)
			}
			return nil, err
		}
		addrs[i] = a
	}
	return addrs, nil
}

// CheckAddress returns the normalized form of an address of a channel, or
// an EINVALID error. The address is not quoted in the error: it is
// personal data.
func CheckAddress(channel, address string) (string, error) {
	a := NormalizeAddress(channel, address)
	if a == "" {
		return "", FieldErrorf("address", "required")
	}
	switch channel {
	case ChannelEmail:
		local, domain, ok := strings.Cut(a, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@ ") {
			return "", FieldErrorf("address", "not an email address")
		}
	case ChannelSMS:
		if len(a) < 2 || a[0] != '+' || strings.Trim(a[1:], "0123456789") != "" {
			return "", FieldErrorf("address", "not an E.164 phone number (+ and digits)")
		}
	}
	return a, nil
}

// MaskAddress hides most of a normalized address, keeping enough for a
// person to recognise it: a phone number's first 5 and last 4 characters
// ("+1415•••2671"; a shorter number keeps less), an email address's first 2
// characters and its domain ("ja•••@example.com"; a local part of 2 or
// fewer keeps less).
func MaskAddress(channel, a string) string {
	const dots = "•••"
	if channel == ChannelEmail {
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
