package engine_test

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
)

// A date trigger enters each contact at its own local time, in every time
// zone from UTC-11 to UTC+14, across a daylight-saving change, from a date
// or a timestamp, and only once.
func TestDateTriggerTimeZones(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish("id: renew\ntrigger:\n  date: {field: renewal_date, offset: -7d, at: '10:00'}\nreentry: always\nsteps:\n  - id: hello\n    email: {template: renew}\n")
		contacts := []struct {
			id, tz, renewal string
			want            time.Time // the entry, UTC; zero: none in the run
		}{
			{"kiritimati", "Pacific/Kiritimati", "2026-03-12", time.Date(2026, 3, 4, 20, 0, 0, 0, time.UTC)},
			{"pago", "Pacific/Pago_Pago", "2026-03-12", time.Date(2026, 3, 5, 21, 0, 0, 0, time.UTC)},
			{"utc", "", "2026-03-12", time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)},
			// Los Angeles moves to daylight time on Sunday 8 March 2026.
			{"la", "America/Los_Angeles", "2026-03-15", time.Date(2026, 3, 8, 17, 0, 0, 0, time.UTC)},
			// A timestamp counts on its day in the contact's zone: the 13th in Tokyo.
			{"tokyo", "Asia/Tokyo", "2026-03-12T23:30:00-05:00", time.Date(2026, 3, 6, 1, 0, 0, 0, time.UTC)},
			{"later", "Europe/Paris", "2026-04-30", time.Time{}},
			{"past", "Europe/Paris", "2026-03-01", time.Time{}},
		}
		for _, c := range contacts {
			p := &nudge.ContactPatch{ID: c.id, Email: str(c.id + "@example.com"), Attributes: map[string]any{"renewal_date": c.renewal}}
			if c.tz != "" {
				p.Timezone = str(c.tz)
			}
			e.contact(p)
		}
		e.run()
		for range 8 * 24 {
			e.advance(time.Hour)
		}
		for _, c := range contacts {
			var got []time.Time
			for _, d := range e.decisions(c.id) {
				if d.Reason == engine.ReasonEnteredDate {
					got = append(got, d.At)
				}
			}
			switch {
			case c.want.IsZero() && len(got) != 0:
				t.Errorf("%s entered at %v, want never", c.id, got)
			case !c.want.IsZero() && (len(got) != 1 || !got[0].Equal(c.want)):
				t.Errorf("%s entered at %v, want once at %v", c.id, got, c.want)
			}
		}
	})
}
