package report

import (
	"context"
	"slices"

	"github.com/nudge/nudge"
)

// Overview is every journey's headline numbers, and messages per contact
// per week across all journeys.
type Overview struct {
	Journeys []OverviewJourney `json:"journeys"`
	// PerWeek: messages per contact per week, over contact-weeks with at
	// least one message.
	PerWeek PerWeek `json:"messages_per_contact_week"`
}

// OverviewJourney is one journey's line of the overview.
type OverviewJourney struct {
	nudge.ReportJourneyCounts
	ConversionRate  float64 `json:"conversion_rate"`
	OptOutRate      float64 `json:"opt_out_rate"`
	ComplaintRate   float64 `json:"complaint_rate"`
	UnsubscribeRate float64 `json:"unsubscribe_rate"`
	Lift            Lift    `json:"lift"`
	// PausedSteps are the journey's SMS steps paused now on their opt-out
	// rate.
	PausedSteps []string `json:"paused_steps"`
}

// PerWeek is the spread of messages per contact per week.
type PerWeek struct {
	ContactWeeks int64 `json:"contact_weeks"`
	Median       int64 `json:"median"`
	P95          int64 `json:"p95"`
	Max          int64 `json:"max"`
}

// BuildOverview computes the overview from the store's counts.
func BuildOverview(d *nudge.ReportOverviewData, opt Options) *Overview {
	opt = opt.withDefaults()
	o := &Overview{Journeys: []OverviewJourney{}}
	for _, j := range d.Journeys {
		oj := OverviewJourney{ReportJourneyCounts: j, ConversionRate: rate(j.Converted, j.Entered),
			OptOutRate: rate(j.SMSOptedOut, j.SMSSent), ComplaintRate: rate(j.EmailComplained, j.EmailSent),
			UnsubscribeRate: rate(j.EmailUnsubscribed, j.EmailSent), PausedSteps: []string{}}
		oj.Lift = lift(Arm{Enrollments: j.Entered - j.HeldOut, Converted: j.Converted - j.HeldOutConverted},
			Arm{Enrollments: j.HeldOut, Converted: j.HeldOutConverted}, opt)
		if j.HeldOut == 0 {
			oj.Lift.Note = "no holdout"
		}
		o.Journeys = append(o.Journeys, oj)
	}
	bs := slices.Clone(d.PerWeek)
	slices.SortFunc(bs, func(a, b nudge.ReportWeekBucket) int { return int(a.Messages - b.Messages) })
	for _, b := range bs {
		o.PerWeek.ContactWeeks += b.Contacts
	}
	at := func(q float64) int64 {
		want := int64(q*float64(o.PerWeek.ContactWeeks) + 0.999999)
		var seen int64
		for _, b := range bs {
			seen += b.Contacts
			if seen >= max(want, 1) {
				return b.Messages
			}
		}
		return 0
	}
	if len(bs) > 0 {
		o.PerWeek.Median, o.PerWeek.P95, o.PerWeek.Max = at(0.5), at(0.95), bs[len(bs)-1].Messages
	}
	return o
}

// ReadOverview reads and builds the overview of p (JourneyID and Version
// ignored).
func ReadOverview(ctx context.Context, st nudge.ReportStore, p *nudge.ReportParams, opt Options) (*Overview, error) {
	d, err := st.ReportOverview(ctx, p)
	if err != nil {
		return nil, err
	}
	pauses, err := st.StepPauseList(ctx, &nudge.StepPauseListParams{Active: true})
	if err != nil {
		return nil, err
	}
	o := BuildOverview(d, opt)
	for i := range o.Journeys {
		for _, ps := range pauses {
			if ps.JourneyID == o.Journeys[i].JourneyID {
				o.Journeys[i].PausedSteps = append(o.Journeys[i].PausedSteps, ps.StepID)
			}
		}
		slices.Sort(o.Journeys[i].PausedSteps)
	}
	return o, nil
}
