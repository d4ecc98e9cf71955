package sim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge/sim"
)

// check asserts what a marketer would check in a simulation report.
type check struct {
	t *testing.T
	r *sim.Report
}

func (c check) decisions(contact string) []*sim.Decision {
	for _, cd := range c.r.Contacts {
		if cd.ContactID == contact {
			return cd.Decisions
		}
	}
	return nil
}

// find returns the contact's decision at step with outcome, nil if none.
func (c check) find(contact, step, outcome string) *sim.Decision {
	for _, d := range c.decisions(contact) {
		if d.StepID == step && d.Outcome == outcome {
			return d
		}
	}
	return nil
}

// got asserts the decision exists (at the given time, if not zero).
func (c check) got(contact, step, outcome string, at string) {
	c.t.Helper()
	d := c.find(contact, step, outcome)
	if d == nil {
		c.t.Errorf("%s: no %s decision at step %q; decisions:\n%s", contact, outcome, step, c.dump(contact))
		return
	}
	if at != "" {
		want, err := time.Parse(time.RFC3339, at)
		if err != nil {
			c.t.Fatal(err)
		}
		if !d.At.Equal(want) {
			c.t.Errorf("%s: %s at step %q at %s, want %s", contact, outcome, step, d.At.Format(time.RFC3339), at)
		}
	}
}

// says asserts the contact's decision at step with outcome has reason and
// its sentence contains each of parts.
func (c check) says(contact, step, outcome, reason string, parts ...string) {
	c.t.Helper()
	d := c.find(contact, step, outcome)
	if d == nil {
		c.t.Errorf("%s: no %s decision at step %q; decisions:\n%s", contact, outcome, step, c.dump(contact))
		return
	}
	if d.Reason != reason {
		c.t.Errorf("%s: %s at step %q has reason %s, want %s", contact, outcome, step, d.Reason, reason)
	}
	for _, p := range parts {
		if !strings.Contains(d.Message, p) {
			c.t.Errorf("%s: %s at step %q says %q, want it to say %q", contact, outcome, step, d.Message, p)
		}
	}
}

// not asserts no such decision exists.
func (c check) not(contact, step, outcome string) {
	c.t.Helper()
	if c.find(contact, step, outcome) != nil {
		c.t.Errorf("%s: unexpected %s decision at step %q; decisions:\n%s", contact, outcome, step, c.dump(contact))
	}
}

// sms counts the SMS sent to a contact.
func (c check) sms(contact string) int {
	n := 0
	for _, d := range c.decisions(contact) {
		if d.Outcome == "sent" && d.Channel == "sms" {
			n++
		}
	}
	return n
}

func (c check) dump(contact string) string {
	var b strings.Builder
	for _, d := range c.decisions(contact) {
		fmt.Fprintf(&b, "  %s %s %s %s: %s\n", d.At.Format(time.RFC3339), d.StepID, d.Outcome, d.Reason, d.Message)
	}
	return b.String()
}

func TestExampleWebinar(t *testing.T) {
	r, _ := runExample(t, "webinar")
	c := check{t, r}
	// The opted-in registrant who has not joined gets the SMS an hour before.
	c.got("w-ana", "text", "sent", "2026-03-05T16:00:00Z")
	c.got("w-dev", "text", "sent", "2026-03-05T16:00:00Z")
	// Everyone gets the confirmation and the reminder the day before.
	for _, id := range []string{"w-ana", "w-ben", "w-chloe", "w-dev", "w-gus"} {
		c.got(id, "confirm", "sent", "")
		c.got(id, "reminder", "sent", "2026-03-04T17:00:00Z")
	}
	// Who already joined gets no SMS: attending converted them first.
	c.got("w-ben", "hour-before", "converted", "2026-03-05T15:45:00Z")
	if n := c.sms("w-ben"); n != 0 {
		t.Errorf("w-ben, who joined already, got %d SMS", n)
	}
	// Who did not opt in to texts gets none, and the log says why.
	if n := c.sms("w-chloe"); n != 0 {
		t.Errorf("w-chloe, not opted in, got %d SMS", n)
	}
	c.says("w-chloe", "text", "skipped", "no_consent_sms", "needs opted_in SMS consent; the contact's is unknown")
	// An hour before is 06:00 in Honolulu: quiet hours until 08:00, after
	// the webinar starts, so the text is skipped, never sent late.
	c.says("w-gus", "text", "skipped", "expired", "SMS 'webinar-sms' expires at 07:00 Pacific/Honolulu, before it may go at 08:00", "quiet hours 21:00–08:00")
	// Eve registered for two webinars a day apart: the first text goes,
	// the second would be her second within 24 hours (1 per 24 h).
	c.got("w-eve", "text", "sent", "2026-03-05T16:00:00Z")
	c.says("w-eve", "text", "skipped", "cap_sms_24h", "Skipped: SMS cap 1 per 24 h reached by 'webinar-sms' sent Thu 5 Mar 11:00")
	if n := c.sms("w-eve"); n != 1 {
		t.Errorf("w-eve got %d SMS, want 1", n)
	}
	// Attended → converted.
	c.got("w-ana", "show-time", "converted", "2026-03-05T17:02:00Z")
	// Registered but did not come: completed, not converted.
	c.got("w-dev", "show-time", "completed", "2026-03-05T19:00:00Z")
	// The holdout gets nothing, and its decisions say what it would have got.
	c.got("w-finn", "text", "held_out", "2026-03-05T16:00:00Z")
	if n := c.sms("w-finn"); n != 0 || c.find("w-finn", "confirm", "sent") != nil {
		t.Errorf("w-finn is held out but was sent something:\n%s", c.dump("w-finn"))
	}

	tot := r.Totals
	if tot.Messages["sms"] != 3 || tot.Messages["email"] != 14 {
		t.Errorf("messages = %v, want 3 sms and 14 email", tot.Messages)
	}
	j := tot.Journeys[0]
	if j.Entered != 8 || j.Converted != 2 || j.HeldOut != 1 || j.Completed != 6 {
		t.Errorf("journey totals = %+v", j)
	}
}

func TestExampleStalledProspect(t *testing.T) {
	r, _ := runExample(t, "stalled-prospect")
	c := check{t, r}
	// The second pricing view in 7 days enters; the first does not.
	c.got("p-sam", "pricing-email", "sent", "2026-03-04T15:20:00Z")
	// Not clicked within 2 days and sales-qualified: one SMS, 2 days later;
	// that is 07:20 in Los Angeles, so it waits for 08:00 (plus a jitter
	// that spreads a batch of texts over 15 minutes).
	c.says("p-sam", "nudge-sms", "deferred", "quiet_hours", "SMS 'pricing-sms' deferred to 08:10 America/Los_Angeles (quiet hours 21:00–08:00; zone from contact)")
	c.got("p-sam", "nudge-sms", "deferred", "2026-03-06T15:20:00Z")
	c.got("p-sam", "nudge-sms", "sent", "2026-03-06T16:10:42Z")
	if n := c.sms("p-sam"); n != 1 {
		t.Errorf("p-sam got %d SMS, want 1", n)
	}
	// Clicked: no SMS.
	c.got("p-kim", "clicked", "branched", "2026-03-04T08:15:00Z")
	if n := c.sms("p-kim"); n != 0 {
		t.Errorf("p-kim clicked the email but got %d SMS", n)
	}
	// Not sales-qualified: the email only.
	c.got("p-lou", "pricing-email", "sent", "")
	c.not("p-lou", "nudge-sms", "sent")
	// A demo booked: converted at once, and nothing more.
	c.got("p-ada", "clicked", "converted", "2026-03-05T19:30:00Z")
	c.not("p-ada", "nudge-sms", "sent")
	// Ron's text waits for 08:00 in Los Angeles; he books a demo at 03:05
	// his time, so the deferred text is never sent.
	c.says("p-ron", "nudge-sms", "deferred", "quiet_hours", "deferred to 08:04 America/Los_Angeles")
	c.got("p-ron", "nudge-sms", "converted", "2026-03-11T10:05:00Z")
	if n := c.sms("p-ron"); n != 0 {
		t.Errorf("p-ron converted while his text was deferred but got %d SMS", n)
	}
	// A customer never enters.
	c.got("p-max", "", "not_entered", "2026-03-06T10:00:00Z")
	c.not("p-max", "", "entered")

	if j := r.Totals.Journeys[0]; j.Entered != 5 || j.Converted != 2 {
		t.Errorf("journey totals = %+v", j)
	}
}

func TestExampleOnboarding(t *testing.T) {
	r, _ := runExample(t, "onboarding")
	c := check{t, r}
	// Becoming a customer starts the series.
	for _, id := range []string{"c-olga", "c-pete", "c-quin", "c-rita"} {
		c.got(id, "welcome", "sent", "")
	}
	// Setup incomplete after 3 days: the one SMS of the journey.
	c.got("c-olga", "setup-sms", "sent", "2026-03-05T17:00:00Z")
	if n := c.sms("c-olga"); n != 1 {
		t.Errorf("c-olga got %d SMS, want 1", n)
	}
	// Setup done: no SMS, tips instead.
	c.not("c-pete", "setup-sms", "sent")
	c.got("c-pete", "tips", "sent", "2026-03-05T18:00:00Z")
	// Not opted in to texts: the same nudge by email.
	c.got("c-quin", "setup-email", "sent", "2026-03-06T10:00:00Z")
	c.not("c-quin", "setup-sms", "sent")
	// The week-one email goes on the next Monday at 09:00 local time.
	c.got("c-olga", "week-one", "sent", "2026-03-09T16:00:00Z") // PDT
	c.got("c-quin", "week-one", "sent", "2026-03-09T09:00:00Z") // GMT
	// Onboarded: converted, nothing more.
	c.got("c-rita", "three-days", "converted", "2026-03-05T16:00:00Z")
	c.not("c-rita", "setup-sms", "sent")
	// A customer before the import is not a new customer.
	if ds := c.decisions("c-walt"); len(ds) != 0 {
		t.Errorf("c-walt, a customer from the start, has decisions:\n%s", c.dump("c-walt"))
	}
	if r.Totals.Messages["sms"] != 1 {
		t.Errorf("sms = %d, want 1", r.Totals.Messages["sms"])
	}
}

func TestExampleRenewal(t *testing.T) {
	r, _ := runExample(t, "renewal")
	c := check{t, r}
	// A week before the renewal date, at 10:00 in the contact's time zone.
	c.got("r-nina", "week-before", "sent", "2026-03-05T15:00:00Z") // EST
	c.got("r-omar", "week-before", "sent", "2026-03-05T18:00:00Z") // PST
	c.got("r-paul", "week-before", "sent", "2026-03-09T09:00:00Z") // CET
	// The day before, SMS only if not renewed.
	c.got("r-nina", "day-before-sms", "sent", "2026-03-11T15:00:00Z")
	c.got("r-omar", "day-before", "converted", "2026-03-08T20:15:00Z")
	c.not("r-omar", "day-before-sms", "sent")
	// Renewed after the text: converted.
	c.got("r-nina", "renewal-day", "converted", "2026-03-12T08:40:00Z")
	// Not opted in to texts: a last-call email instead.
	c.got("r-paul", "last-call-email", "sent", "2026-03-15T09:00:00Z")
	c.not("r-paul", "day-before-sms", "sent")
	// Not a customer: not entered. Renewal months away: nothing yet.
	c.got("r-lena", "", "not_entered", "2026-03-07T16:00:00Z")
	if ds := c.decisions("r-ivo"); len(ds) != 0 {
		t.Errorf("r-ivo renews in June but has decisions:\n%s", c.dump("r-ivo"))
	}
	if j := r.Totals.Journeys[0]; j.Entered != 3 || j.Converted != 2 || j.Exited != 1 {
		t.Errorf("journey totals = %+v", j)
	}
}
