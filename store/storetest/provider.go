package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// testProviderStatus checks what the settings page reads of the
// providers: the last success and error, never replaced by an older
// report, and the counts of the current hour.
func testProviderStatus(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	list := func() []*nudge.ProviderStatus {
		t.Helper()
		ps, err := s.ProviderList(ctx)
		if err != nil {
			t.Fatalf("ProviderList: %v", err)
		}
		return ps
	}
	record := func(at time.Time, rs ...*nudge.ProviderReport) {
		t.Helper()
		if err := s.ProviderRecord(ctx, rs, at); err != nil {
			t.Fatalf("ProviderRecord: %v", err)
		}
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("ProviderList of a new store: %+v, want none", got)
	}

	t0 := now.Add(10 * time.Minute) // 10 minutes into an hour
	hour := t0.Truncate(time.Hour)
	record(t0,
		&nudge.ProviderReport{Channel: nudge.ChannelSMS, Provider: "twilio", Errors: 2, LastErrorAt: t0.Add(-time.Second),
			LastError: "21211: The 'To' number +1 415 555 0100 is not a valid phone number."},
		&nudge.ProviderReport{Channel: nudge.ChannelEmail, Provider: "smtp", Successes: 5, LastSuccessAt: t0.Add(-2 * time.Second)})
	want := []*nudge.ProviderStatus{
		{Channel: nudge.ChannelEmail, Provider: "smtp", LastSuccessAt: t0.Add(-2 * time.Second),
			HourStart: hour, HourSuccesses: 5, UpdatedAt: t0},
		{Channel: nudge.ChannelSMS, Provider: "twilio", LastErrorAt: t0.Add(-time.Second),
			LastError: "21211: The 'To' number [phone] is not a valid phone number.", HourStart: hour, HourErrors: 2, UpdatedAt: t0},
	}
	got := list()
	if d := diff(want, got); d != "" {
		t.Fatalf("after the first reports (-want +got):\n%s", d)
	}
	for _, p := range got {
		wantUTC(t, "provider status", p.HourStart, p.UpdatedAt)
		if !p.LastSuccessAt.IsZero() {
			wantUTC(t, "last success", p.LastSuccessAt)
		}
		if !p.LastErrorAt.IsZero() {
			wantUTC(t, "last error", p.LastErrorAt)
		}
	}

	t.Run("a success later keeps the last error and adds to the hour", func(t *testing.T) {
		t1 := t0.Add(5 * time.Minute)
		record(t1, &nudge.ProviderReport{Channel: nudge.ChannelSMS, Provider: "twilio", Successes: 3, LastSuccessAt: t1})
		tw := list()[1]
		if !tw.LastSuccessAt.Equal(t1) || !tw.LastErrorAt.Equal(t0.Add(-time.Second)) || !strings.HasPrefix(tw.LastError, "21211") {
			t.Errorf("twilio %+v; want last success %v and the 21211 error of %v kept", tw, t1, t0.Add(-time.Second))
		}
		if s, e := tw.HourCounts(t1); s != 3 || e != 2 {
			t.Errorf("hour counts %d successes, %d errors; want 3 and 2", s, e)
		}
	})
	t.Run("an older report from another node replaces nothing", func(t *testing.T) {
		old := t0.Add(-5 * time.Minute)
		record(old, &nudge.ProviderReport{Channel: nudge.ChannelSMS, Provider: "twilio", Errors: 1, LastErrorAt: old,
			LastError: "20429: Too Many Requests"})
		tw := list()[1]
		if !tw.LastErrorAt.Equal(t0.Add(-time.Second)) || !strings.HasPrefix(tw.LastError, "21211") {
			t.Errorf("twilio %+v; want the later 21211 error kept", tw)
		}
		if _, e := tw.HourCounts(t0); e != 3 {
			t.Errorf("hour errors %d; want 3: the older report is of the same hour", e)
		}
	})
	t.Run("a new hour counts from zero", func(t *testing.T) {
		next := hour.Add(time.Hour + time.Minute)
		if s, e := list()[1].HourCounts(next); s != 0 || e != 0 {
			t.Errorf("counts read in the next hour before any report: %d, %d; want 0, 0", s, e)
		}
		record(next, &nudge.ProviderReport{Channel: nudge.ChannelSMS, Provider: "twilio", Errors: 1, LastErrorAt: next,
			LastError: "30003: Unreachable destination handset ann@example.com"})
		tw := list()[1]
		if s, e := tw.HourCounts(next); s != 0 || e != 1 || !tw.HourStart.Equal(next.Truncate(time.Hour)) {
			t.Errorf("twilio %+v: hour counts %d, %d; want 0, 1 in the hour of %v", tw, s, e, next)
		}
		if tw.LastError != "30003: Unreachable destination handset [email]" {
			t.Errorf("last error %q; want the email masked", tw.LastError)
		}
	})
	t.Run("a report without a provider is refused and nothing is written", func(t *testing.T) {
		before := list()
		err := s.ProviderRecord(ctx, []*nudge.ProviderReport{
			{Channel: nudge.ChannelEmail, Provider: "smtp", Successes: 1, LastSuccessAt: t0.Add(time.Hour)},
			{Channel: nudge.ChannelSMS},
		}, t0.Add(time.Hour))
		wantCode(t, "ProviderRecord without a provider", err, nudge.EINVALID)
		if d := diff(before, list()); d != "" {
			t.Errorf("statuses changed by a refused batch (-before +after):\n%s", d)
		}
	})
}
