package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/report"
)

// reportRoutes registers the reports (read role).
func (s *Server) reportRoutes(read func(string, http.HandlerFunc)) {
	read("GET /v1/reports/journeys/{id}", s.handleReportJourney)
	read("GET /v1/reports/overview", s.handleReportOverview)
	read("GET /v1/contacts/{id}/stages", s.handleContactStages)
}

// reportParams reads from, to (RFC 3339 or a date) and version.
func reportParams(r *http.Request) (*nudge.ReportParams, error) {
	p := &nudge.ReportParams{JourneyID: r.PathValue("id")}
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &p.From}, {"to", &p.To}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return nil, nudge.FieldErrorf(f.name, "%q is not a time: write 2026-03-02T09:00:00Z or 2026-03-02", v)
			}
		}
		*f.t = t.UTC()
	}
	if v := q.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, nudge.FieldErrorf("version", "%q is not a version number", v)
		}
		p.Version = n
	}
	return p, nudge.CheckReportParams(p, p.JourneyID != "")
}

func (s *Server) handleReportJourney(w http.ResponseWriter, r *http.Request) {
	p, err := reportParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep, err := report.Journey(r.Context(), s.store, p, report.Options{Now: s.clock.Now()})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) handleReportOverview(w http.ResponseWriter, r *http.Request) {
	p, err := reportParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	o, err := report.ReadOverview(r.Context(), s.store, p, report.Options{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}
