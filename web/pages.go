package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/report"
)

type overviewRow struct {
	Journey *nudge.Journey
	Counts  report.OverviewJourney
}

type overviewPage struct {
	Rows    []overviewRow
	Pages   pager
	PerWeek report.PerWeek
	Chart   template.HTML
	Fatigue template.HTML // messages per contact per week
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	js, err := s.store.JourneyList(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.store.ReportOverview(ctx, &nudge.ReportParams{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ov := report.BuildOverview(d, report.Options{})
	counts := map[string]report.OverviewJourney{}
	for _, c := range ov.Journeys {
		counts[c.JourneyID] = c
	}
	p := &overviewPage{PerWeek: ov.PerWeek}
	for _, j := range js {
		if j.Status == nudge.JourneyArchived {
			continue
		}
		p.Rows = append(p.Rows, overviewRow{Journey: j, Counts: counts[j.ID]})
	}
	p.Rows, p.Pages = paginate(r, "page", p.Rows)
	days, err := s.messagesPerDay(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Chart = barChart(days)
	p.Fatigue = fatigueChart(d.PerWeek)
	s.render(w, r, http.StatusOK, "overview.html", "Overview", p)
}

type journeyPage struct {
	Journey  *nudge.Journey
	Versions []*nudge.JourneyVersion
	Pages    pager // of the versions
	Source   string
	Graph    template.HTML
	Report   *report.Report
	Charts   *reportCharts
	Problem  string
	From, To string // the date range, as typed
	Range    string // a problem with the date range or version
	// Version is the version whose enrollments are counted (0: all);
	// Shown is the version drawn and whose source is shown.
	Version, Shown int64
	AllVersions    []*nudge.JourneyVersion // for the version choice
}

func (s *Server) handleJourney(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	j, ok := s.pathJourney(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := &journeyPage{Journey: j, From: q.Get("from"), To: q.Get("to"), Shown: j.Version}
	status := http.StatusOK
	var err error
	rp := &nudge.ReportParams{JourneyID: j.ID}
	if rp.From, rp.To, err = dayRange(q); err != nil {
		p.Range, status = nudge.ErrorMessage(err), http.StatusBadRequest
		rp.From, rp.To = time.Time{}, time.Time{}
	}
	if v := q.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > j.Version {
			p.Range, status = fmt.Sprintf("version: %q is not a version of this journey (1 to %d); showing every version", v, j.Version), http.StatusBadRequest
		} else {
			rp.Version, p.Shown, p.Version = n, n, n
		}
	}
	all, err := s.store.JourneyVersionList(ctx, j.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.Reverse(all) // newest first
	p.AllVersions = all
	p.Versions, p.Pages = paginate(r, "versions", all)
	v, err := s.store.JourneyVersionGet(ctx, j.ID, p.Shown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Source = string(v.Source)
	def, err := journey.Parse(j.ID+".yaml", v.Source, journey.Options{})
	if err != nil {
		p.Problem = err.Error()
	} else {
		rep, err := report.Journey(ctx, s.store, rp, report.Options{})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Report = rep
		p.Graph = drawGraph(def, rep)
		p.Charts = drawReport(rep)
	}
	s.render(w, r, status, "journey.html", j.Name, p)
}

func (s *Server) handleSetStatus(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := s.store.JourneySetStatus(r.Context(), id, status, s.clock.Now()); err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "console journey status", "journey_id", id, "status", status, "user_id", current(r).User.ID)
		http.Redirect(w, r, "/journeys/"+id, http.StatusSeeOther)
	}
}

// handleStepResume ends the pause of an SMS step paused on its opt-out
// rate: its sends go again.
func (s *Server) handleStepResume(w http.ResponseWriter, r *http.Request) {
	id, step := r.PathValue("id"), r.PathValue("step")
	u := current(r).User
	if _, err := s.store.StepResume(r.Context(), id, step, "user:"+u.Email, s.clock.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console step resumed", "journey_id", id, "step_id", step, "user_id", u.ID)
	http.Redirect(w, r, "/journeys/"+id+"#paused-h", http.StatusSeeOther)
}

type searchPage struct {
	Q        string
	Contacts []*nudge.Contact
	Pages    pager
	Searched bool
}

func (s *Server) handleContactSearch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	p := &searchPage{Q: q, Searched: q != ""}
	if q != "" {
		seen := map[string]bool{}
		add := func(cs ...*nudge.Contact) {
			for _, c := range cs {
				if !seen[c.ID] {
					seen[c.ID] = true
					p.Contacts = append(p.Contacts, c)
				}
			}
		}
		if c, err := s.store.ContactGet(ctx, q); err == nil {
			add(c)
		} else if nudge.ErrorCode(err) != nudge.ENOTFOUND {
			s.fail(w, r, err)
			return
		}
		var lp *nudge.ContactListParams
		switch {
		case strings.Contains(q, "@"):
			lp = &nudge.ContactListParams{Email: strings.ToLower(q), Limit: 50}
		case strings.HasPrefix(q, "+") || strings.Trim(q, "0123456789 -()") == "":
			lp = &nudge.ContactListParams{Phone: normalizePhone(q), Limit: 50}
		}
		if lp != nil {
			pg, err := s.store.ContactList(ctx, lp)
			if err != nil && nudge.ErrorCode(err) != nudge.EINVALID {
				s.fail(w, r, err)
				return
			}
			if pg != nil {
				add(pg.Contacts...)
			}
		}
		if len(p.Contacts) == 1 {
			http.Redirect(w, r, "/contacts/"+p.Contacts[0].ID, http.StatusSeeOther)
			return
		}
		p.Contacts, p.Pages = paginate(r, "page", p.Contacts)
	}
	s.render(w, r, http.StatusOK, "contacts.html", "Contacts", p)
}

// normalizePhone keeps a leading + and the digits.
func normalizePhone(q string) string {
	var b strings.Builder
	for i, c := range q {
		if c >= '0' && c <= '9' || c == '+' && i == 0 {
			b.WriteRune(c)
		}
	}
	out := b.String()
	if !strings.HasPrefix(out, "+") {
		out = "+" + out
	}
	return out
}

type contactPage struct {
	Contact     *nudge.Contact
	Attributes  [][2]any
	Consent     []*nudge.ConsentState
	Ledger      []*nudge.ConsentEntry
	LedgerPages pager
	Enrollments []*nudge.Enrollment
	EnrollPages pager
	Timeline    *api.Timeline
	Entries     []*api.TimelineEntry // the timeline's page
	TimePages   pager
	Journeys    []string // journeys of the contact's enrollments, for the filter
	Journey     string   // the filter
	Channels    []string
	Channel     string // the filter
}

func (s *Server) handleContact(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.store.ContactGet(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := &contactPage{Contact: c, Journey: r.URL.Query().Get("journey"), Channels: messageChannels, Channel: r.URL.Query().Get("channel")}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.Attributes = append(p.Attributes, [2]any{k, c.Attributes[k]})
	}
	if p.Consent, err = s.store.ConsentList(ctx, c.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Ledger, err = s.store.ConsentLedger(ctx, &nudge.ConsentLedgerParams{ContactID: c.ID, Limit: 1000}); err != nil {
		s.fail(w, r, err)
		return
	}
	slices.Reverse(p.Ledger) // newest first
	p.Ledger, p.LedgerPages = paginate(r, "ledger", p.Ledger)
	if p.Enrollments, err = s.store.EnrollmentList(ctx, &nudge.EnrollmentListParams{ContactID: c.ID, Limit: 1000}); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, e := range p.Enrollments {
		if !slices.Contains(p.Journeys, e.JourneyID) {
			p.Journeys = append(p.Journeys, e.JourneyID)
		}
	}
	slices.Sort(p.Journeys)
	p.Enrollments, p.EnrollPages = paginate(r, "enrollments", p.Enrollments)
	if p.Timeline, err = api.BuildTimeline(ctx, s.store, &api.TimelineParams{ContactID: c.ID, JourneyID: p.Journey, Limit: 10000}); err != nil {
		s.fail(w, r, err)
		return
	}
	entries := p.Timeline.Entries
	if p.Channel != "" {
		entries = slices.DeleteFunc(slices.Clone(entries), func(e *api.TimelineEntry) bool { return e.Channel != p.Channel })
	}
	p.Entries, p.TimePages = paginate(r, "entries", entries)
	s.render(w, r, http.StatusOK, "contact.html", cmp.Or(c.Email, c.ID), p)
}

// pathJourney reads the journey named by the path's {id}, or shows why not.
func (s *Server) pathJourney(w http.ResponseWriter, r *http.Request) (*nudge.Journey, bool) {
	j, err := s.store.JourneyGet(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return j, true
}
