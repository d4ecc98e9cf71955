package nudge

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ProviderStatus is what the delivery workers last saw of one channel's
// provider, shared by every node through the store: when a call last
// succeeded, when one last failed and with what, and the calls of the
// current clock hour. The settings page shows it.
type ProviderStatus struct {
	Channel  string `json:"channel"`
	Provider string `json:"provider"` // the adapter: "twilio", "kannel", "smtp", "logsink", …
	// LastSuccessAt is when the provider last accepted a message; zero
	// when it never has.
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
	// LastErrorAt is when the provider last refused a message or a call
	// ended without an answer; zero when none has.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastError is that error: the provider's code and text, with phone
	// numbers and email addresses masked (MaskAddresses).
	LastError string `json:"last_error,omitempty"`
	// HourStart is the clock hour (UTC) that HourSuccesses and HourErrors
	// count calls of: the hour of the latest report. Counts of an hour
	// before the current one are old news (HourCounts).
	HourStart     time.Time `json:"hour_start"`
	HourSuccesses int64     `json:"hour_successes"`
	HourErrors    int64     `json:"hour_errors"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// HourCounts returns the successes and errors of the clock hour of now:
// zero when the status was last reported in an earlier hour.
func (s *ProviderStatus) HourCounts(now time.Time) (successes, errors int64) {
	if !s.HourStart.Equal(now.UTC().Truncate(time.Hour)) {
		return 0, 0
	}
	return s.HourSuccesses, s.HourErrors
}

// ProviderReport is what one delivery pass saw of one provider: how many
// calls it accepted and refused, and the last of each.
type ProviderReport struct {
	Channel       string
	Provider      string
	Successes     int
	Errors        int
	LastSuccessAt time.Time // of the pass's last accepted call; zero if none
	LastErrorAt   time.Time // of the pass's last failed call; zero if none
	LastError     string    // masked by the caller (MaskAddresses); cut to MaxProviderError bytes
}

// MaxProviderError is the longest LastError a store keeps, in bytes.
const MaxProviderError = 500

// ProviderStore keeps the providers' statuses. Delivery workers write one
// report per provider per claimed batch, never one write per message.
type ProviderStore interface {
	// ProviderRecord folds reports into the statuses of their providers, in
	// one transaction: an upsert per (channel, provider). A later success
	// or error replaces an earlier one, never the other way round (nodes
	// report out of order); the hour counts add up within the clock hour
	// of now and start again in a new one. EINVALID for a report without
	// channel or provider (nothing is written then).
	ProviderRecord(ctx context.Context, rs []*ProviderReport, now time.Time) error
	// ProviderList returns every provider status recorded, by channel and
	// provider.
	ProviderList(ctx context.Context) ([]*ProviderStatus, error)
}

// CheckProviderReports returns an EINVALID error naming the first report
// without a channel or provider, for stores to call before writing.
func CheckProviderReports(rs []*ProviderReport) error {
	for i, r := range rs {
		if r == nil || r.Channel == "" || r.Provider == "" {
			return FieldErrorf(fmt.Sprintf("reports[%d]", i), "a provider report needs a channel and a provider")
		}
	}
	return nil
}

var (
	emailLike = regexp.MustCompile(`[^\s<>()"',;:]+@[^\s<>()"',;:]+\.[A-Za-z]{2,}`)
	phoneLike = regexp.MustCompile(`\+?\d[\d\s().-]*\d`)
)

// MaskAddresses hides what could identify a person in a provider's error
// text before it is kept and shown: email addresses become "[email]",
// runs of seven or more digits (with the spaces, dots, dashes and
// parentheses of phone numbers) become "[phone]". Error codes (21610,
// 550 5.1.1) stay. The result is cut to MaxProviderError bytes.
func MaskAddresses(s string) string {
	s = emailLike.ReplaceAllString(s, "[email]")
	s = phoneLike.ReplaceAllStringFunc(s, func(m string) string {
		n := 0
		for _, r := range m {
			if r >= '0' && r <= '9' {
				n++
			}
		}
		if n < 7 {
			return m
		}
		return "[phone]"
	})
	if len(s) > MaxProviderError {
		s = strings.ToValidUTF8(s[:MaxProviderError], "")
	}
	return s
}
