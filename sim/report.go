package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudge/nudge"
)

// Report is what a simulation decided, per contact and in total.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`

	Journeys         []ReportJourney `json:"journeys"`
	ContactsImported int             `json:"contacts_imported"`
	ImportRejected   int             `json:"import_rejected"`
	ImportErrors     []string        `json:"import_errors,omitempty"`
	Events           int             `json:"events"`         // replayed
	EventsOutside    int             `json:"events_outside"` // before From or after To: left out

	// Contacts holds every contact with a decision, by id, each with its
	// decisions in time order.
	Contacts []*ContactDecisions `json:"contacts"`
	Totals   Totals              `json:"totals"`
	// Paused lists the SMS steps the guardrail paused on their opt-out
	// rate during the replay, in the order it paused them.
	Paused []PausedStep `json:"paused_steps,omitempty"`

	totalsOnly bool
}

// ReportJourney is a journey as the simulation published it.
type ReportJourney struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// PausedStep is an SMS step paused during the replay because too many of
// its texts were followed by an opt-out: from At on, its sends are skipped
// (step_paused_optout_rate).
type PausedStep struct {
	At        time.Time `json:"at"`
	JourneyID string    `json:"journey_id"`
	StepID    string    `json:"step_id"`
	Sent      int64     `json:"sent"`      // texts counted, since Since
	OptedOut  int64     `json:"opted_out"` // of them, followed within 24 hours by an opt-out
	Since     time.Time `json:"since"`
	Threshold float64   `json:"threshold"`
}

func pausedStep(p *nudge.StepPause) PausedStep {
	return PausedStep{At: p.PausedAt, JourneyID: p.JourneyID, StepID: p.StepID, Sent: p.Sent, OptedOut: p.OptedOut, Since: p.Since, Threshold: p.Threshold}
}

// ContactDecisions is one contact's decisions.
type ContactDecisions struct {
	ContactID string      `json:"contact_id"`
	Decisions []*Decision `json:"decisions"`
}

// Decision is one decision as the report shows it.
type Decision struct {
	At           time.Time      `json:"at"`
	JourneyID    string         `json:"journey_id"`
	EnrollmentID string         `json:"enrollment_id,omitempty"`
	StepID       string         `json:"step_id,omitempty"`
	Channel      string         `json:"channel,omitempty"`
	Outcome      string         `json:"outcome"`
	Reason       string         `json:"reason"`
	Message      string         `json:"message"`
	Details      map[string]any `json:"details,omitempty"`
}

// Totals are the report's sums.
type Totals struct {
	Decisions int `json:"decisions"`
	// Messages counts sends (outcome sent) by channel.
	Messages map[string]int `json:"messages"`
	// PerContact is messages per contact, over the contacts who entered
	// at least one journey.
	PerContact Spread `json:"messages_per_contact"`
	// PerStep counts sends by journey and step.
	PerStep []StepCount `json:"messages_per_step"`
	// NotSent counts the decisions that held something back, by outcome
	// and reason: skipped, deferred, held out, not entered.
	NotSent []ReasonCount `json:"not_sent"`
	// Journeys sums enrollments per journey.
	Journeys []JourneyTotals `json:"journeys"`
}

// Spread is the minimum, median and maximum of a count over contacts.
type Spread struct {
	Contacts int `json:"contacts"`
	Min      int `json:"min"`
	Median   int `json:"median"`
	Max      int `json:"max"`
}

// StepCount is the number of messages one step sent.
type StepCount struct {
	JourneyID string `json:"journey_id"`
	StepID    string `json:"step_id"`
	Channel   string `json:"channel"`
	Count     int    `json:"count"`
}

// ReasonCount is how many decisions had one outcome and reason.
type ReasonCount struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Count   int    `json:"count"`
}

// JourneyTotals are one journey's enrollments by how they stand at the end.
type JourneyTotals struct {
	JourneyID string `json:"journey_id"`
	Entered   int    `json:"entered"`
	HeldOut   int    `json:"held_out"`
	Converted int    `json:"converted"`
	// ConversionRate is Converted / Entered (0 without entries).
	ConversionRate float64 `json:"conversion_rate"`
	Exited         int     `json:"exited"`
	Completed      int     `json:"completed"`
	Live           int     `json:"live"` // still waiting at the end of the replay
}

// notSent are the outcomes counted in Totals.NotSent.
var notSent = map[string]bool{
	nudge.OutcomeSkipped: true, nudge.OutcomeDeferred: true,
	nudge.OutcomeHeldOut: true, nudge.OutcomeNotEntered: true,
}

// decisionTallier reads every decision with what a tally counts
// (sqlite.DB.DecisionTally).
type decisionTallier interface {
	DecisionTally(ctx context.Context, fn func(d *nudge.Decision)) error
}

// listDecisions tallies every decision and, unless the report holds the
// totals only, keeps each contact's in byContact.
func (r *Report) listDecisions(ctx context.Context, s nudge.Store, tally func(*nudge.Decision), byContact map[string]*ContactDecisions) error {
	var after int64
	for {
		ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{AfterID: after, Limit: 10000})
		if err != nil {
			return fmt.Errorf("sim: list decisions: %w", err)
		}
		for _, d := range ds {
			tally(d)
			if r.totalsOnly {
				continue
			}
			cd := byContact[d.ContactID]
			if cd == nil {
				cd = &ContactDecisions{ContactID: d.ContactID}
				byContact[d.ContactID] = cd
			}
			cd.Decisions = append(cd.Decisions, &Decision{
				At: d.At, JourneyID: d.JourneyID, EnrollmentID: d.EnrollmentID, StepID: d.StepID, Channel: d.Channel,
				Outcome: d.Outcome, Reason: d.Reason, Message: d.Message, Details: d.Details,
			})
		}
		if len(ds) < 10000 {
			return nil
		}
		after = ds[len(ds)-1].ID
	}
}

// collect reads the decisions and enrollments the replay left and sums them.
func (r *Report) collect(ctx context.Context, s nudge.Store) error {
	byContact := map[string]*ContactDecisions{}
	sent := map[string]int{}
	perStep := map[StepCount]int{}
	reasons := map[ReasonCount]int{}
	r.Totals.Messages = map[string]int{}
	r.Contacts = []*ContactDecisions{}
	tally := func(d *nudge.Decision) {
		r.Totals.Decisions++
		switch {
		case d.Outcome == nudge.OutcomeSent:
			r.Totals.Messages[d.Channel]++
			sent[d.ContactID]++
			perStep[StepCount{JourneyID: d.JourneyID, StepID: d.StepID, Channel: d.Channel}]++
		case notSent[d.Outcome]:
			reasons[ReasonCount{Outcome: d.Outcome, Reason: d.Reason}]++
		}
	}
	// The totals alone need no decision's message or details.
	if t, ok := s.(decisionTallier); ok && r.totalsOnly {
		if err := t.DecisionTally(ctx, tally); err != nil {
			return fmt.Errorf("sim: list decisions: %w", err)
		}
	} else if err := r.listDecisions(ctx, s, tally, byContact); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(byContact)) {
		cd := byContact[id]
		// Decisions are stored in commit order, which is time order in a
		// replay; sort anyway so that the report never depends on it.
		slices.SortStableFunc(cd.Decisions, func(a, b *Decision) int { return a.At.Compare(b.At) })
		r.Contacts = append(r.Contacts, cd)
	}
	for k, n := range perStep {
		k.Count = n
		r.Totals.PerStep = append(r.Totals.PerStep, k)
	}
	slices.SortFunc(r.Totals.PerStep, func(a, b StepCount) int {
		return cmp.Or(cmp.Compare(a.JourneyID, b.JourneyID), cmp.Compare(a.StepID, b.StepID), cmp.Compare(a.Channel, b.Channel))
	})
	for k, n := range reasons {
		k.Count = n
		r.Totals.NotSent = append(r.Totals.NotSent, k)
	}
	slices.SortFunc(r.Totals.NotSent, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Reason, b.Reason))
	})

	totals := map[string]*JourneyTotals{}
	for _, j := range r.Journeys {
		totals[j.ID] = &JourneyTotals{JourneyID: j.ID}
	}
	enrolled := map[string]bool{}
	afterID := ""
	for {
		es, err := s.EnrollmentList(ctx, &nudge.EnrollmentListParams{AfterID: afterID, Limit: 10000})
		if err != nil {
			return fmt.Errorf("sim: list enrollments: %w", err)
		}
		for _, e := range es {
			enrolled[e.ContactID] = true
			t := totals[e.JourneyID]
			if t == nil {
				continue
			}
			t.Entered++
			if e.HeldOut {
				t.HeldOut++
			}
			switch e.State {
			case nudge.EnrollmentConverted:
				t.Converted++
			case nudge.EnrollmentExited:
				t.Exited++
			case nudge.EnrollmentCompleted:
				t.Completed++
			case nudge.EnrollmentWaiting:
				t.Live++
			}
		}
		if len(es) < 10000 {
			break
		}
		afterID = es[len(es)-1].ID
	}
	for _, j := range r.Journeys {
		t := totals[j.ID]
		if t.Entered > 0 {
			t.ConversionRate = float64(t.Converted) / float64(t.Entered)
		}
		r.Totals.Journeys = append(r.Totals.Journeys, *t)
	}
	counts := make([]int, 0, len(enrolled))
	for id := range enrolled {
		counts = append(counts, sent[id])
	}
	if len(counts) > 0 {
		slices.Sort(counts)
		r.Totals.PerContact = Spread{Contacts: len(counts), Min: counts[0], Median: counts[len(counts)/2], Max: counts[len(counts)-1]}
	}
	return nil
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// timeFormat is how the text report writes times (always UTC).
const timeFormat = "Mon 2006-01-02 15:04"

// WriteText writes the report for people: a header, every contact's
// decisions (unless summaryOnly), then the totals.
func (r *Report) WriteText(w io.Writer, summaryOnly bool) error {
	b := &errWriter{w: w}
	b.printf("Simulation from %s to %s UTC (virtual time)\n", r.From.Format(timeFormat), r.To.Format(timeFormat))
	for _, j := range r.Journeys {
		b.printf("  journey %s v%d: %s\n", j.ID, j.Version, j.Name)
	}
	b.printf("  contacts imported %d", r.ContactsImported)
	if r.ImportRejected > 0 {
		b.printf(" (%d rows rejected)", r.ImportRejected)
	}
	b.printf(", events replayed %d", r.Events)
	if r.EventsOutside > 0 {
		b.printf(" (%d outside the window, left out)", r.EventsOutside)
	}
	b.printf(", decisions %d\n", r.Totals.Decisions)
	for _, e := range r.ImportErrors {
		b.printf("  %s\n", e)
	}

	if !summaryOnly {
		for _, c := range r.Contacts {
			b.printf("\n%s\n", c.ContactID)
			tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
			for _, d := range c.Decisions {
				step := d.StepID
				if d.Channel != "" {
					step += " (" + d.Channel + ")"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.At.Format(timeFormat), d.JourneyID, cmp.Or(step, "-"), d.Outcome, d.Message)
			}
			tw.Flush()
		}
	}

	t := r.Totals
	b.printf("\nTotals\n")
	var chans []string
	for _, ch := range slices.Sorted(maps.Keys(t.Messages)) {
		chans = append(chans, fmt.Sprintf("%s %d", ch, t.Messages[ch]))
	}
	b.printf("  messages: %s\n", cmp.Or(strings.Join(chans, ", "), "none"))
	if p := t.PerContact; p.Contacts > 0 {
		b.printf("  messages per enrolled contact (%d contacts): min %d, median %d, max %d\n", p.Contacts, p.Min, p.Median, p.Max)
	}
	if len(t.PerStep) > 0 {
		b.printf("\n  messages by step\n")
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		for _, s := range t.PerStep {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%d\n", s.JourneyID, s.StepID, s.Channel, s.Count)
		}
		tw.Flush()
	}
	if len(t.NotSent) > 0 {
		b.printf("\n  held back, by reason\n")
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		for _, x := range t.NotSent {
			fmt.Fprintf(tw, "    %s\t%s\t%d\n", x.Outcome, x.Reason, x.Count)
		}
		tw.Flush()
	}
	if len(r.Paused) > 0 {
		b.printf("\n  SMS steps paused on their opt-out rate\n")
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		for _, p := range r.Paused {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%d of %d texts followed by an opt-out (%.1f%%, threshold %.1f%%)\n",
				p.At.Format(timeFormat), p.JourneyID, p.StepID, p.OptedOut, p.Sent, 100*float64(p.OptedOut)/float64(p.Sent), 100*p.Threshold)
		}
		tw.Flush()
	}
	b.printf("\n  journeys\n")
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "    journey\tentered\theld out\tconverted\trate\texited\tcompleted\tstill waiting\t\n")
	for _, j := range t.Journeys {
		fmt.Fprintf(tw, "    %s\t%d\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t\n", j.JourneyID, j.Entered, j.HeldOut, j.Converted, 100*j.ConversionRate, j.Exited, j.Completed, j.Live)
	}
	tw.Flush()
	return b.err
}

// errWriter keeps the first write error, so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
