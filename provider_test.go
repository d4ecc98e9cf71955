package nudge_test

import (
	"strings"
	"testing"

	"github.com/nudge/nudge"
)

func TestMaskAddresses(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"twilio invalid number", "21211: The 'To' number +14155550100 is not a valid phone number.",
			"21211: The 'To' number [phone] is not a valid phone number."},
		{"a number written with spaces and dashes", "to +1 (415) 555-0100 failed", "to [phone] failed"},
		{"an SMTP refusal", "550: 5.1.1 <ann.lee+news@mail.example.com>: Recipient address rejected",
			"550: 5.1.1 <[email]>: Recipient address rejected"},
		{"codes stay", "30003: Unreachable destination handset (error 30003, attempt 2)",
			"30003: Unreachable destination handset (error 30003, attempt 2)"},
		{"nothing to mask", "Internal Server Error", "Internal Server Error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := nudge.MaskAddresses(tt.in); got != tt.want {
				t.Errorf("MaskAddresses(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("cut to the maximum, whole characters", func(t *testing.T) {
		got := nudge.MaskAddresses(strings.Repeat("é", nudge.MaxProviderError))
		if len(got) > nudge.MaxProviderError || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
			t.Errorf("a long error kept %d bytes (%q…); want at most %d, whole characters", len(got), got[:8], nudge.MaxProviderError)
		}
	})
}
