package web

import (
	"cmp"
	"fmt"
	"html/template"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/report"
)

// reportCharts are a journey report drawn as SVG charts; a chart without
// data to draw is empty, and the page says so.
type reportCharts struct {
	Funnel, TimeToGoal, Lift, Attribution, OptOuts, CRM, TimeToAction template.HTML
}

var (
	solid   = hseries{Class: "s0", Shape: "solid"}
	hatched = hseries{Class: "s1", Shape: "hatched"}
	dotted  = hseries{Class: "s2", Shape: "dotted"}
)

func named(s hseries, name string) hseries { s.Name = name; return s }

func drawReport(rep *report.Report) *reportCharts {
	c := &reportCharts{}
	var rows []hrow
	for _, f := range rep.Funnel {
		rows = append(rows, hrow{Label: f.StepID, Values: []float64{float64(f.Reached), float64(f.Converted)},
			Text: []string{fmt.Sprintf("%d reached (%s of entered)", f.Reached, pct(f.ReachedRate)), fmt.Sprintf("%d converted", f.Converted)}})
	}
	if len(rows) > 0 {
		c.Funnel = hbarChart("chart-funnel", "Funnel: enrollments that reached each step, and of them converted", "enrollments",
			[]hseries{named(solid, "reached"), named(hatched, "converted")}, rows, count)
	}

	rows = nil
	spreadRow := func(label string, s report.Spread) {
		if s.Count == 0 {
			return
		}
		rows = append(rows, hrow{Label: fmt.Sprintf("%s (%d)", label, s.Count), Values: []float64{s.Median, s.P75, s.P90},
			Text: []string{"median " + span(s.Median), "75th " + span(s.P75), "90th " + span(s.P90)}})
	}
	t := rep.TimeToGoal
	spreadRow("from entry, all", t.FromEntry)
	spreadRow("from entry, treated", t.FromEntryTreated)
	spreadRow("from entry, held out", t.FromEntryHeldOut)
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		spreadRow("from last "+ch, t.FromLastMessage[ch])
	}
	if len(rows) > 0 {
		c.TimeToGoal = hbarChart("chart-ttg", "Time to goal: median, 75th and 90th percentile", "time to goal",
			[]hseries{named(solid, "median"), named(hatched, "75th percentile"), named(dotted, "90th percentile")}, rows, span)
	}

	lifts := []intervalRow{liftRow("whole journey", rep.Lift)}
	measured := rep.Lift.Measured
	for _, l := range rep.StepLift {
		lifts = append(lifts, liftRow("step "+l.StepID, l))
		measured = measured || l.Measured
	}
	if measured {
		c.Lift = intervalChart("chart-lift", "Lift: conversion rate of treated minus held out, with its 95% confidence interval", "difference in conversion rate (percentage points)", lifts, points)
	}

	rows = nil
	for _, a := range rep.Attribution {
		rows = append(rows, hrow{Label: a.StepID + " (" + a.Channel + ")", Values: []float64{float64(a.LastTouch), float64(a.AnyTouch)},
			Text: []string{fmt.Sprintf("%d last touch", a.LastTouch), fmt.Sprintf("%d any touch", a.AnyTouch)}})
	}
	if len(rows) > 0 {
		c.Attribution = hbarChart("chart-attr", "Attribution: conversions after each step's message", "conversions",
			[]hseries{named(solid, "last touch"), named(hatched, "any touch")}, rows, count)
	}

	rows = nil
	for _, o := range rep.OptOuts {
		rows = append(rows, hrow{Label: o.StepID, Values: []float64{o.Rate},
			Text: []string{fmt.Sprintf("%s: %d of %d SMS", pct(o.Rate), o.OptedOut, o.Sent)}})
	}
	if len(rows) > 0 {
		c.OptOuts = hbarChart("chart-optout", "Opt-out health: SMS followed by an opt-out within 24 hours", "opt-out rate",
			[]hseries{named(solid, "opt-out rate")}, rows, pct)
	}

	rows = nil
	for _, m := range rep.StageMoves {
		rows = append(rows, hrow{Label: fmt.Sprintf("%s: %s → %s", m.Field, cmp.Or(m.From, "(none)"), cmp.Or(m.To, "(none)")), Values: []float64{float64(m.Enrollments)},
			Text: []string{fmt.Sprintf("%d enrollments (%d changes)", m.Enrollments, m.Changes)}})
	}
	if len(rows) > 0 {
		c.CRM = hbarChart("chart-crm", "CRM movement: stage changes after entry", "enrollments",
			[]hseries{named(solid, "enrollments")}, rows, count)
	}

	rows = nil
	for _, a := range rep.TimeToAction {
		s := a.Spread
		if s.Count == 0 {
			continue
		}
		rows = append(rows, hrow{Label: fmt.Sprintf("%s to %s (%d)", a.StepID, a.Action, s.Count), Values: []float64{s.Median, s.P75, s.P90},
			Text: []string{"median " + span(s.Median), "75th " + span(s.P75), "90th " + span(s.P90)}})
	}
	if len(rows) > 0 {
		c.TimeToAction = hbarChart("chart-tta", "Time from each step's message to its click, reply and goal", "time",
			[]hseries{named(solid, "median"), named(hatched, "75th percentile"), named(dotted, "90th percentile")}, rows, span)
	}
	return c
}

func liftRow(label string, l report.Lift) intervalRow {
	r := intervalRow{Label: label, Est: l.Diff, Low: l.Low, High: l.High, Measured: l.Measured, Note: l.Note}
	if !l.Measured && r.Note == "" {
		r.Note = "no holdout to compare with"
	}
	return r
}

// edgeCounts says how many enrollments went along each edge of the graph
// (keyed from+"\x00"+to) where the report lets us know it: an edge into a
// step with no other way in carries everyone who reached that step, and
// the only edge into the end carries the completed enrollments. The
// report does not count the others (which case of a branch, which path of
// a split was taken), so they have no count.
func edgeCounts(edges []gedge, rep *report.Report) map[string]int64 {
	reached := map[string]int64{}
	for _, f := range rep.Funnel {
		reached[f.StepID] = f.Reached
	}
	in := map[string]int{}
	for _, e := range edges {
		in[e.to]++
	}
	out := map[string]int64{}
	for _, e := range edges {
		switch {
		case in[e.to] != 1:
		case e.to == endNode:
			out[e.from+"\x00"+e.to] = rep.Completed
		default:
			out[e.from+"\x00"+e.to] = reached[e.to]
		}
	}
	return out
}

// fatigueChart draws how many contact-weeks had 1, 2, 3, … messages: the
// fatigue view. Nil when no contact had a message.
func fatigueChart(bs []nudge.ReportWeekBucket) template.HTML {
	var rows []hrow
	for _, b := range bs {
		label := fmt.Sprintf("%d messages", b.Messages)
		if b.Messages == 1 {
			label = "1 message"
		}
		rows = append(rows, hrow{Label: label, Values: []float64{float64(b.Contacts)}, Text: []string{fmt.Sprintf("%d contact-weeks", b.Contacts)}})
	}
	if len(rows) == 0 {
		return ""
	}
	return hbarChart("chart-fatigue", "Messages per contact per week: how many contact-weeks had each number of messages", "contact-weeks",
		[]hseries{named(solid, "contact-weeks")}, rows, count)
}
