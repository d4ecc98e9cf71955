package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/report"
)

// TestCRMMovement: the from → to table passes through, and retention
// counts only customers old enough for each window, as of Options.Now.
func TestCRMMovement(t *testing.T) {
	j, err := journey.Parse("j.yaml", []byte("id: j\ntrigger: {event: go}\nsteps:\n  - id: hello\n    email: {template: hello}\n"), journey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	d := &nudge.ReportData{
		Stages: []nudge.ReportStageMove{{Field: "lifecycle_stage", From: "lead", To: "customer", Changes: 4, Enrollments: 4},
			{Field: "lifecycle_stage", From: "customer", To: "opportunity", Changes: 1, Enrollments: 1}},
		Customers: []nudge.ReportCustomer{
			{BecameAt: t0},                                         // still a customer, 100 days
			{BecameAt: t0, LeftAt: t0.Add(45 * day)},               // left after 45 days
			{BecameAt: t0.Add(50 * day)},                           // 50 days old: only the 30-day window
			{BecameAt: t0.Add(95 * day), LeftAt: t0.Add(96 * day)}, // too recent for any window
		},
	}
	r := report.Build(j, d, report.Options{Now: t0.Add(100 * day)})
	if r.BecameCustomers != 4 || len(r.StageMoves) != 2 {
		t.Fatalf("became %d, moves %v", r.BecameCustomers, r.StageMoves)
	}
	want := []report.Retention{{Days: 30, Eligible: 3, Retained: 3, Rate: 1}, {Days: 60, Eligible: 2, Retained: 1, Rate: 0.5}, {Days: 90, Eligible: 2, Retained: 1, Rate: 0.5}}
	for i, w := range want {
		if g := r.Retention[i]; g != w {
			t.Errorf("retention %d days = %+v, want %+v", w.Days, g, w)
		}
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(out.String()), " ")
	for _, s := range []string{"lifecycle_stage lead customer 4 4", "customers after 60 days 1 of 2 50.0%", "Still customers after 30 days: 3 of 3 (100%)."} {
		if !strings.Contains(text, s) {
			t.Errorf("text report lacks %q:\n%s", s, out.String())
		}
	}
	// Without Now, the latest time in the data: 96 days after t0.
	r = report.Build(j, d, report.Options{})
	if g := r.Retention[2]; g.Eligible != 2 {
		t.Errorf("90-day retention as of the data's last time = %+v, want 2 eligible", g)
	}
	if r := report.Build(j, &nudge.ReportData{}, report.Options{}); r.Retention[0].Note == "" || !strings.Contains(r.CRM, "No enrolled contact") {
		t.Errorf("no data: retention %+v, CRM %q", r.Retention, r.CRM)
	}
}
