package report

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

func dur(s float64) string {
	if s == 0 {
		return "-"
	}
	return (time.Duration(s) * time.Second).Round(time.Minute).String()
}

func reasons(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func spreadText(s Spread) string {
	if s.Count == 0 {
		return "n=0"
	}
	return fmt.Sprintf("median %s, p75 %s, p90 %s (n=%d)", dur(s.Median), dur(s.P75), dur(s.P90), s.Count)
}

func (l Lift) text() string {
	if !l.Measured {
		return l.Note
	}
	s := fmt.Sprintf("%+.1f points (95%% CI %+.1f to %+.1f), relative %+.1f%%",
		100*l.Diff, 100*l.Low, 100*l.High, 100*l.Relative)
	if l.MedianTimeDif != 0 {
		s += fmt.Sprintf("; median time to goal %+s", (time.Duration(l.MedianTimeDif) * time.Second).Round(time.Minute))
	}
	return s
}

// WriteText prints the report as readable tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("Journey %s (%s)", r.JourneyID, r.Name)
	if r.Version > 0 {
		p(", version %d", r.Version)
	}
	p("\n")
	p("Entered %d (held out %d); converted %d (%s); completed %d; exited %d; still active %d\n\n",
		r.Entered, r.HeldOut, r.Converted, pct(r.ConversionRate), r.Completed, r.Exited, r.Waiting)
	p("FUNNEL\nstep\tkind\treached\trate\tsent\tdelivered\tfailed\tclicked\treplied\theld out\tconverted\tskipped\tdeferred\n")
	for _, f := range r.Funnel {
		p("%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", f.StepID, f.Kind, f.Reached, pct(f.ReachedRate),
			f.Sent, f.Delivered, f.Failed, f.Clicked, f.Replied, f.HeldOut, f.Converted, reasons(f.Skipped), reasons(f.Deferred))
	}
	p("\nENDED\nstate\treason\tenrollments\n")
	for _, e := range r.Ended {
		p("%s\t%s\t%d\n", e.State, e.Reason, e.Count)
	}
	p("\nTIME TO GOAL\nfrom entry\t%s\n", spreadText(r.TimeToGoal.FromEntry))
	p("from entry, treated\t%s\nfrom entry, held out\t%s\n", spreadText(r.TimeToGoal.FromEntryTreated), spreadText(r.TimeToGoal.FromEntryHeldOut))
	for _, ch := range slices.Sorted(maps.Keys(r.TimeToGoal.FromLastMessage)) {
		p("from the last %s\t%s\n", ch, spreadText(r.TimeToGoal.FromLastMessage[ch]))
	}
	p("\nCONVERSION BY PATH\nstep\tchannel\tgot it\tconverted\trate\tdid not\tconverted\trate\n")
	for _, x := range r.Paths {
		p("%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\n", x.StepID, x.Channel, x.With.Enrollments, x.With.Converted, pct(x.With.Rate),
			x.Without.Enrollments, x.Without.Converted, pct(x.Without.Rate))
	}
	p("\nLIFT OVER HOLDOUT\njourney\ttreated %d/%d (%s)\theld out %d/%d (%s)\t%s\n",
		r.Lift.Treated.Converted, r.Lift.Treated.Enrollments, pct(r.Lift.Treated.Rate),
		r.Lift.HeldOut.Converted, r.Lift.HeldOut.Enrollments, pct(r.Lift.HeldOut.Rate), r.Lift.text())
	for _, l := range r.StepLift {
		p("step %s\ttreated %d/%d\theld out %d/%d\t%s\n", l.StepID, l.Treated.Converted, l.Treated.Enrollments,
			l.HeldOut.Converted, l.HeldOut.Enrollments, l.text())
	}
	p("\nATTRIBUTION (SMS 24h, email 72h)\nstep\tchannel\tlast touch\tany touch\n")
	for _, a := range r.Attribution {
		p("%s\t%s\t%d\t%d\n", a.StepID, a.Channel, a.LastTouch, a.AnyTouch)
	}
	p("\nTIME TO NEXT ACTION (from each message)\nstep\tchannel\taction\tspread\n")
	for _, a := range r.TimeToAction {
		p("%s\t%s\t%s\t%s\n", a.StepID, a.Channel, a.Action, spreadText(a.Spread))
	}
	p("\nTRUST\nSMS sent %d, opted out within 24h %d (%s)\nstep\tsent\topted out\trate\n", r.SMSSent, r.SMSOptedOut, pct(r.OptOutRate))
	for _, o := range r.OptOuts {
		p("%s\t%d\t%d\t%s\n", o.StepID, o.Sent, o.OptedOut, pct(o.Rate))
	}
	p("email sent %d, spam complaints %d (%s), unsubscribed within 72h %d (%s)\n", r.EmailSent,
		r.EmailComplained, pct(r.ComplaintRate), r.EmailUnsubscribed, pct(r.UnsubscribeRate))
	for _, ps := range r.PausedSteps {
		p("PAUSED: step %s since %s: %d of %d texts (%s) followed by an opt-out, over %s; resume: nudge journey resume %s --step %s\n",
			ps.StepID, ps.PausedAt.UTC().Format(time.RFC3339), ps.OptedOut, ps.Sent, pct(ps.Rate), pct(ps.Threshold), r.JourneyID, ps.StepID)
	}
	p("\nCRM MOVEMENT (after entry)\n%s\n", r.CRM)
	if len(r.StageMoves) > 0 {
		p("field\tfrom\tto\tchanges\tenrollments\n")
		for _, m := range r.StageMoves {
			p("%s\t%s\t%s\t%d\t%d\n", m.Field, cmp.Or(m.From, "(none)"), cmp.Or(m.To, "(none)"), m.Changes, m.Enrollments)
		}
	}
	for _, n := range r.Retention {
		if n.Eligible > 0 {
			p("customers after %d days\t%d of %d\t%s\n", n.Days, n.Retained, n.Eligible, pct(n.Rate))
		}
	}
	for _, n := range r.Notes {
		p("note: %s\n", n)
	}
	return tw.Flush()
}

// WriteCSV prints the report as CSV rows: section, step, metric, value.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	row := func(section, step, metric string, v any) {
		cw.Write([]string{section, step, metric, fmt.Sprint(v)})
	}
	cw.Write([]string{"section", "step", "metric", "value"})
	row("journey", "", "entered", r.Entered)
	row("journey", "", "held_out", r.HeldOut)
	row("journey", "", "converted", r.Converted)
	row("journey", "", "completed", r.Completed)
	row("journey", "", "exited", r.Exited)
	row("journey", "", "waiting", r.Waiting)
	row("journey", "", "conversion_rate", r.ConversionRate)
	row("journey", "", "sms_sent", r.SMSSent)
	row("journey", "", "sms_opted_out", r.SMSOptedOut)
	row("journey", "", "email_sent", r.EmailSent)
	row("journey", "", "email_complained", r.EmailComplained)
	row("journey", "", "email_unsubscribed", r.EmailUnsubscribed)
	for _, e := range r.Ended {
		row("ended", "", e.State+"/"+e.Reason, e.Count)
	}
	for _, f := range r.Funnel {
		for _, m := range []struct {
			k string
			v any
		}{{"reached", f.Reached}, {"reached_rate", f.ReachedRate}, {"sent", f.Sent}, {"delivered", f.Delivered},
			{"failed", f.Failed}, {"clicked", f.Clicked}, {"replied", f.Replied}, {"held_out", f.HeldOut},
			{"converted", f.Converted}, {"opted_out", f.OptedOut}, {"complained", f.Complained}, {"unsubscribed", f.Unsubscribed}} {
			row("funnel", f.StepID, m.k, m.v)
		}
		for _, k := range slices.Sorted(maps.Keys(f.Skipped)) {
			row("funnel", f.StepID, "skipped/"+k, f.Skipped[k])
		}
		for _, k := range slices.Sorted(maps.Keys(f.Deferred)) {
			row("funnel", f.StepID, "deferred/"+k, f.Deferred[k])
		}
	}
	for name, s := range map[string]Spread{"from_entry": r.TimeToGoal.FromEntry, "from_entry_treated": r.TimeToGoal.FromEntryTreated,
		"from_entry_held_out": r.TimeToGoal.FromEntryHeldOut} {
		row("time_to_goal", "", name+"/count", s.Count)
		row("time_to_goal", "", name+"/median_seconds", s.Median)
		row("time_to_goal", "", name+"/p75_seconds", s.P75)
		row("time_to_goal", "", name+"/p90_seconds", s.P90)
	}
	for _, a := range r.TimeToAction {
		m := a.Channel + "/" + a.Action
		row("time_to_action", a.StepID, m+"/count", a.Spread.Count)
		row("time_to_action", a.StepID, m+"/median_seconds", a.Spread.Median)
		row("time_to_action", a.StepID, m+"/p75_seconds", a.Spread.P75)
		row("time_to_action", a.StepID, m+"/p90_seconds", a.Spread.P90)
	}
	for _, x := range r.Paths {
		row("path", x.StepID, "with/enrollments", x.With.Enrollments)
		row("path", x.StepID, "with/converted", x.With.Converted)
		row("path", x.StepID, "without/enrollments", x.Without.Enrollments)
		row("path", x.StepID, "without/converted", x.Without.Converted)
	}
	for _, l := range append([]Lift{r.Lift}, r.StepLift...) {
		row("lift", l.StepID, "treated", fmt.Sprintf("%d/%d", l.Treated.Converted, l.Treated.Enrollments))
		row("lift", l.StepID, "held_out", fmt.Sprintf("%d/%d", l.HeldOut.Converted, l.HeldOut.Enrollments))
		if l.Measured {
			row("lift", l.StepID, "diff", l.Diff)
			row("lift", l.StepID, "low", l.Low)
			row("lift", l.StepID, "high", l.High)
			row("lift", l.StepID, "relative", l.Relative)
		} else {
			row("lift", l.StepID, "note", l.Note)
		}
	}
	for _, a := range r.Attribution {
		row("attribution", a.StepID, a.Channel+"/last_touch", a.LastTouch)
		row("attribution", a.StepID, a.Channel+"/any_touch", a.AnyTouch)
	}
	for _, o := range r.OptOuts {
		row("opt_out", o.StepID, "sent", o.Sent)
		row("opt_out", o.StepID, "opted_out", o.OptedOut)
	}
	for _, ps := range r.PausedSteps {
		row("paused", ps.StepID, "paused_at", ps.PausedAt.UTC().Format(time.RFC3339))
	}
	for _, m := range r.StageMoves {
		row("crm", "", m.Field+"/"+m.From+"->"+m.To+"/changes", m.Changes)
		row("crm", "", m.Field+"/"+m.From+"->"+m.To+"/enrollments", m.Enrollments)
	}
	row("crm", "", "became_customers", r.BecameCustomers)
	for _, n := range r.Retention {
		row("crm", "", fmt.Sprintf("retained_%dd", n.Days), fmt.Sprintf("%d/%d", n.Retained, n.Eligible))
	}
	cw.Flush()
	return cw.Error()
}

// WriteText prints the overview as a table.
func (o *Overview) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "journey\tentered\tconverted\trate\tSMS sent\topt-out rate\temail sent\tcomplaints\tunsubscribes\tpaused steps\tlift\n")
	for _, j := range o.Journeys {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", j.JourneyID, j.Entered, j.Converted, pct(j.ConversionRate),
			j.SMSSent, pct(j.OptOutRate), j.EmailSent, pct(j.ComplaintRate), pct(j.UnsubscribeRate), strings.Join(j.PausedSteps, " "), j.Lift.text())
	}
	fmt.Fprintf(tw, "\nmessages per contact per week: median %d, p95 %d, max %d (%d contact-weeks)\n",
		o.PerWeek.Median, o.PerWeek.P95, o.PerWeek.Max, o.PerWeek.ContactWeeks)
	return tw.Flush()
}

// WriteCSV prints the overview as CSV, one journey a row.
func (o *Overview) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"journey", "entered", "converted", "held_out", "held_out_converted", "sms_sent", "sms_opted_out",
		"email_sent", "email_complained", "email_unsubscribed", "paused_steps", "lift_diff", "lift_low", "lift_high", "note"})
	for _, j := range o.Journeys {
		l := j.Lift
		f := func(v float64) string {
			if !l.Measured {
				return ""
			}
			return strconv.FormatFloat(v, 'f', 4, 64)
		}
		cw.Write([]string{j.JourneyID, fmt.Sprint(j.Entered), fmt.Sprint(j.Converted), fmt.Sprint(j.HeldOut),
			fmt.Sprint(j.HeldOutConverted), fmt.Sprint(j.SMSSent), fmt.Sprint(j.SMSOptedOut), fmt.Sprint(j.EmailSent),
			fmt.Sprint(j.EmailComplained), fmt.Sprint(j.EmailUnsubscribed), strings.Join(j.PausedSteps, " "), f(l.Diff), f(l.Low), f(l.High), l.Note})
	}
	cw.Flush()
	return cw.Error()
}
