package report_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

var ctx = context.Background()

// plantedSource is a journey with a 50% holdout, an email and an SMS step.
const plantedSource = `id: %s
name: Planted effect
trigger:
  event: signed.up
holdout: 50
goal:
  event: demo.booked
steps:
  - id: intro
    email: {template: intro}
  - id: text
    sms: {template: nudge, purpose: reminder}
`

// plant describes generated enrollments: held-out ones convert with
// probability HeldRate, treated ones with TreatedRate; OptOut is the chance
// a treated contact opts out 1 h after the SMS.
type plant struct {
	Journey               string
	N                     int
	HeldRate, TreatedRate float64
	OptOut                float64
	Seed                  uint64
	Contacts              int // contacts to spread enrollments over (default N)
	Batch                 int // enrollments per EngineCommit (default 500)
	Resends               int // more texts at step text per treated enrollment, for volume
}

type store interface {
	nudge.Store
	nudge.ReportStore
}

// mustContacts creates contacts c000000… with an email and a phone.
func mustContacts(t testing.TB, s nudge.Store, n int) {
	t.Helper()
	for lo := 0; lo < n; lo += 1000 {
		var ps []*nudge.ContactPatch
		for i := lo; i < min(n, lo+1000); i++ {
			email, phone := fmt.Sprintf("c%d@example.com", i), fmt.Sprintf("+1312555%04d", i%10000)
			ps = append(ps, &nudge.ContactPatch{ID: contactID(i), Email: &email, Phone: &phone})
		}
		if _, err := s.ContactMerge(ctx, ps, nudgetest.Epoch); err != nil {
			t.Fatalf("ContactMerge: %v", err)
		}
	}
}

func contactID(i int) string { return fmt.Sprintf("c%07d", i) }

// mustPlant publishes the journey and commits p.N enrollments through
// EngineCommit, as the engine would have: entered, an email at intro, the
// SMS at text (or held_out), then converted (goal_met) or completed.
func mustPlant(t testing.TB, s nudge.Store, p plant) {
	t.Helper()
	now := nudgetest.Epoch
	src := []byte(fmt.Sprintf(plantedSource, p.Journey))
	sum := sha256.Sum256(src)
	if _, _, err := s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: p.Journey, Name: "Planted",
		Source: src, Hash: hex.EncodeToString(sum[:])}, now); err != nil {
		t.Fatalf("JourneyPublish: %v", err)
	}
	rng := rand.New(rand.NewPCG(p.Seed, 7))
	contacts := p.Contacts
	if contacts == 0 {
		contacts = p.N
	}
	batch := p.Batch
	if batch == 0 {
		batch = 500
	}
	c := &nudge.EngineCommit{}
	var consent []*nudge.ConsentRecordParams
	flush := func() {
		if len(c.Enrollments) == 0 {
			return
		}
		at := c.Enrollments[0].EnteredAt // messages are stamped with the commit's time
		if err := s.EngineCommit(ctx, c, at); err != nil {
			t.Fatalf("EngineCommit: %v", err)
		}
		if len(consent) > 0 {
			if _, err := s.ConsentRecord(ctx, consent, at); err != nil {
				t.Fatalf("ConsentRecord: %v", err)
			}
		}
		c, consent = &nudge.EngineCommit{}, nil
	}
	for i := range p.N {
		entered := now.Add(time.Duration(i) * time.Second)
		held := rng.Float64() < 0.5
		conv := rng.Float64() < p.TreatedRate
		if held {
			conv = rng.Float64() < p.HeldRate
		}
		e := &nudge.Enrollment{ID: fmt.Sprintf("%s-%07d", p.Journey, i), JourneyID: p.Journey, Version: 1,
			ContactID: contactID(i % contacts), Key: fmt.Sprint(i), HeldOut: held, EnteredAt: entered,
			State: nudge.EnrollmentCompleted, EndedAt: entered.Add(72 * time.Hour)}
		d := func(at time.Time, step, channel, outcome, reason string) {
			c.Decisions = append(c.Decisions, &nudge.Decision{At: at, ContactID: e.ContactID, JourneyID: e.JourneyID,
				Version: 1, EnrollmentID: e.ID, StepID: step, Channel: channel, Outcome: outcome, Reason: reason, Message: reason})
		}
		m := func(at time.Time, step, channel string) {
			c.Messages = append(c.Messages, &nudge.Message{ID: e.ID + "/" + step, EnrollmentID: e.ID, ContactID: e.ContactID,
				JourneyID: e.JourneyID, Version: 1, StepID: step, Channel: channel, Template: step,
				Status: nudge.MessageQueued, IdempotencyKey: e.ID + "/" + step, AvailableAt: at, CreatedAt: at})
		}
		d(entered, "", "", nudge.OutcomeEntered, "entered_event")
		if held {
			d(entered, "intro", nudge.ChannelEmail, nudge.OutcomeHeldOut, "held_out")
			d(entered.Add(time.Hour), "text", nudge.ChannelSMS, nudge.OutcomeHeldOut, "held_out")
		} else {
			d(entered, "intro", nudge.ChannelEmail, nudge.OutcomeSent, "queued")
			m(entered, "intro", nudge.ChannelEmail)
			d(entered.Add(time.Hour), "text", nudge.ChannelSMS, nudge.OutcomeSent, "queued")
			m(entered.Add(time.Hour), "text", nudge.ChannelSMS)
			for k := range p.Resends {
				id := fmt.Sprintf("%s/text/%d", e.ID, k+1)
				c.Messages = append(c.Messages, &nudge.Message{ID: id, EnrollmentID: e.ID, ContactID: e.ContactID,
					JourneyID: e.JourneyID, Version: 1, StepID: "text", Channel: nudge.ChannelSMS, Template: "text",
					Status: nudge.MessageQueued, IdempotencyKey: id, AvailableAt: entered.Add(time.Hour)})
			}
			if p.OptOut > 0 && rng.Float64() < p.OptOut {
				consent = append(consent, &nudge.ConsentRecordParams{ContactID: e.ContactID, Channel: nudge.ChannelSMS,
					Purpose: nudge.PurposeMarketing, Status: nudge.ConsentOptedOut, Source: nudge.SourceKeyword,
					OccurredAt: entered.Add(2 * time.Hour)})
			}
		}
		if conv {
			e.State, e.EndedAt = nudge.EnrollmentConverted, entered.Add(time.Duration(2+rng.IntN(40))*time.Hour)
			d(e.EndedAt, "", "", nudge.OutcomeConverted, "goal_met")
		} else {
			d(e.EndedAt, "", "", nudge.OutcomeCompleted, "completed")
		}
		c.Enrollments = append(c.Enrollments, e)
		if len(c.Enrollments) >= batch {
			flush()
		}
	}
	flush()
}
