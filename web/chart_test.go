package web

import (
	"html/template"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/report"
)

func TestPaginate(t *testing.T) {
	items := make([]int, 120)
	for i := range items {
		items[i] = i
	}
	for _, tc := range []struct {
		query       string
		first, last int
		prev, next  string
	}{
		{"/x", 0, 49, "", "/x?p=50"},
		{"/x?p=50&q=a", 50, 99, "/x?q=a", "/x?p=100&q=a"},
		{"/x?p=100", 100, 119, "/x", ""},
		{"/x?p=500", -1, -1, "/x", ""}, // past the end: an empty page
		{"/x?p=-3", 0, 49, "", "/x?p=50"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, pg := paginate(httptest.NewRequest("GET", tc.query, nil), "p", items)
			if tc.first < 0 {
				if len(got) != 0 {
					t.Errorf("got %d items, want none", len(got))
				}
			} else if len(got) == 0 || got[0] != tc.first || got[len(got)-1] != tc.last {
				t.Errorf("got %v, want %d to %d", got, tc.first, tc.last)
			}
			if pg.First != tc.prev || pg.Next != tc.next {
				t.Errorf("links first %q next %q, want %q and %q", pg.First, pg.Next, tc.prev, tc.next)
			}
		})
	}
}

func TestLineDiff(t *testing.T) {
	old := "id: a\nname: A\nsteps:\n  - id: one\n"
	new := "id: a\nname: B\nsteps:\n  - id: one\n  - id: two\n"
	var got []string
	for _, l := range lineDiff(old, new) {
		got = append(got, l.Op+strconv.Itoa(l.Old)+":"+strconv.Itoa(l.New)+" "+l.Text)
	}
	want := []string{" 1:1 id: a", "-2:0 name: A", "+0:2 name: B", " 3:3 steps:", " 4:4   - id: one", "+0:5   - id: two"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lineDiff (-want +got):\n%s", d)
	}
	if changed(lineDiff(old, old)) {
		t.Error("a file compared with itself has changes")
	}
}

// TestIntervalChart checks that the lift chart draws the interval where its
// numbers say, marks zero, and writes the numbers as text.
func TestIntervalChart(t *testing.T) {
	svg := string(intervalChart("c", "Lift", "points", []intervalRow{
		{Label: "whole journey", Est: 0.05, Low: -0.02, High: 0.12, Measured: true},
		{Label: "step text", Note: "not enough data yet"},
	}, points))
	for _, want := range []string{"+5.0 pts (95% CI -2.0 pts to +12.0 pts)", "no difference", "not enough data yet", "<title id=\"c-t\">Lift</title>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	// The dot lies between the interval's ends, and zero between them too.
	num := func(re string) float64 {
		m := regexp.MustCompile(re).FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("no match for %s in %s", re, svg)
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		return f
	}
	lo := num(`<line class="ci-line" x1="([0-9.]+)"`)
	hi := num(`<line class="ci-line" x1="[0-9.]+" x2="([0-9.]+)"`)
	dot := num(`<circle class="ci-dot" cx="([0-9.]+)"`)
	zero := num(`<line class="zero" x1="([0-9.]+)"`)
	if !(lo < zero && zero < dot && dot < hi) {
		t.Errorf("interval from %.1f to %.1f, dot at %.1f, zero at %.1f: want low < zero < estimate < high", lo, hi, dot, zero)
	}
}

func TestReportChartsCRM(t *testing.T) {
	rep := &report.Report{StageMoves: []nudge.ReportStageMove{
		{Field: "lifecycle_stage", From: "lead", To: "customer", Changes: 4, Enrollments: 3},
		{Field: "journey_stage", From: "", To: "trial", Changes: 1, Enrollments: 1},
	}}
	svg := string(drawReport(rep).CRM)
	for _, want := range []string{"lifecycle_stage: lead → customer", "3 enrollments (4 changes)", "journey_stage: (none) → trial"} {
		if !strings.Contains(svg, template.HTMLEscapeString(want)) {
			t.Errorf("the CRM chart lacks %q", want)
		}
	}
	if drawReport(&report.Report{}).CRM != "" {
		t.Error("a report without stage changes draws a CRM chart")
	}
}
