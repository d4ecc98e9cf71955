package engine

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// BenchmarkDueSMSEvaluate measures what the guardrails add to the due path,
// without the commits: N due SMS sends (NUDGE_BENCH_DUESMS, default
// 100000) of N opted-in contacts are claimed (untimed) and, in batches of
// 1000, their contacts and facts read in bulk (consent, suppressions, recent messages,
// other live enrollments), and each is advanced through policy.Evaluate.
// decisions/s counts the SMS decisions made.
func BenchmarkDueSMSEvaluate(b *testing.B) {
	n, _ := strconv.Atoi(cmp.Or(os.Getenv("NUDGE_BENCH_DUESMS"), "100000"))
	b.Run(fmt.Sprintf("sqlite/sends=%d", n), func(b *testing.B) {
		ctx := context.Background()
		s := nudgetest.SQLite(b)
		clock := nudgetest.NewClock(time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC))
		now := clock.Now()
		src := "id: due-sms\ntrigger: {event: go}\nsteps:\n  - id: pause\n    wait: {for: 1d}\n  - id: text\n    sms: {template: t, purpose: reminder}\n"
		if _, _, err := s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "due-sms", Name: "due-sms", Source: []byte(src)}, now); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.PolicyPublish(ctx, []byte("timezone: America/Chicago\n"), "", now); err != nil {
			b.Fatal(err)
		}
		const chunk = 10000
		var seq int
		for i := 0; i < n; i += chunk {
			ps := make([]*nudge.ContactPatch, 0, chunk)
			cs := make([]*nudge.ConsentRecordParams, 0, chunk)
			c := &nudge.EngineCommit{}
			for k := i; k < min(n, i+chunk); k++ {
				id := fmt.Sprintf("c%07d", k)
				phone, tz := fmt.Sprintf("+1312%07d", k), "America/Chicago"
				ps = append(ps, &nudge.ContactPatch{ID: id, Phone: &phone, Timezone: &tz})
				cs = append(cs, &nudge.ConsentRecordParams{ContactID: id, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedIn, Source: nudge.SourceImport})
				seq++
				c.Enrollments = append(c.Enrollments, &nudge.Enrollment{
					ID: fmt.Sprintf("e%09d", seq), JourneyID: "due-sms", Version: 1, ContactID: id,
					State: nudge.EnrollmentWaiting, StepID: "pause", WakeAt: now.Add(time.Hour),
					Steps: map[string]nudge.StepRecord{"pause": {At: now}}, EnteredAt: now, UpdatedAt: now,
				})
			}
			if _, err := s.ContactMerge(ctx, ps, now); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ConsentRecord(ctx, cs, now); err != nil {
				b.Fatal(err)
			}
			if err := s.EngineCommit(ctx, c, now); err != nil {
				b.Fatal(err)
			}
		}
		eng, err := New(Config{Store: s, Clock: clock})
		if err != nil {
			b.Fatal(err)
		}
		if err := eng.Reload(ctx); err != nil {
			b.Fatal(err)
		}
		var decided, sent int
		var elapsed time.Duration
		for b.Loop() {
			// Claims are untimed: uncommitted claims stay waiting, and
			// claiming past them is this benchmark's artefact, not the
			// engine's (its commits clear them).
			b.StopTimer()
			clock.Advance(2 * time.Hour) // past the wake time and any lease
			now := clock.Now()
			var batches [][]*nudge.Enrollment
			for {
				ens, err := s.EnrollmentClaimDue(ctx, now, 10000, time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				if len(ens) == 0 {
					break
				}
				for len(ens) > 0 {
					k := min(len(ens), 1000)
					batches = append(batches, ens[:k])
					ens = ens[k:]
				}
			}
			b.StartTimer()
			start := time.Now()
			for _, ens := range batches {
				ids := make([]string, len(ens))
				for i, en := range ens {
					ids[i] = en.ContactID
				}
				contacts, err := eng.contacts(ctx, ids)
				if err != nil {
					b.Fatal(err)
				}
				g := eng.newGuard(ctx, now, contacts, nil)
				for _, en := range ens {
					g.batch[en.ID] = true
				}
				for _, en := range ens {
					j, _, err := eng.version(ctx, en.JourneyID, en.Version)
					if err != nil {
						b.Fatal(err)
					}
					tr := Advance(j, en, contacts[en.ContactID], Input{Kind: InputWake}, now, eng.opts(g))
					g.advanced(tr.Enrollment)
					for _, d := range tr.Decisions {
						if d.Channel == nudge.ChannelSMS {
							decided++
							if d.Outcome == nudge.OutcomeSent {
								sent++
							}
						}
					}
				}
			}
			elapsed += time.Since(start)
		}
		if sent != decided {
			b.Errorf("%d of %d sends allowed, want all", sent, decided)
		}
		b.ReportMetric(float64(decided)/elapsed.Seconds(), "decisions/s")
	})
}
