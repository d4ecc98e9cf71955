package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/report"
	"github.com/nudge/nudge/sim"
)

// simContactsShown is how many contacts' decisions a simulation's page
// lists; the totals count them all.
const simContactsShown = 100

// simTimeout bounds one simulation's run.
const simTimeout = time.Minute

type simForm struct {
	Journey  string // "published:ID", "example:DIR" or "paste"
	YAML     string
	Data     string // "example:DIR" or "upload"
	From, To string // the replay's days, UTC; empty: the timeline's
}

type simOption struct{ Value, Label string }

type simJourneyReport struct {
	Report *report.Report
	Charts *reportCharts
}

type simulatePage struct {
	Form      simForm
	Journeys  []simOption
	Samples   []simOption
	MaxUpload string
	Problems  []problem
	Lines     []srcLine
	Error     string
	Result    *sim.Report
	Contacts  []*sim.ContactDecisions // the first simContactsShown
	More      int                     // contacts with decisions not listed
	Reports   []simJourneyReport
	NoReport  string // why there is no journey report
	Took      time.Duration
	// After a run of a file that is not the published version: where to
	// publish it from, and the file.
	PublishAction, PublishSource string
}

// examples lists the example folders that have a journey, contacts and a
// timeline.
func (s *Server) examples() []string {
	if s.exampleFS == nil {
		return nil
	}
	ents, err := fs.ReadDir(s.exampleFS, ".")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		ok := e.IsDir()
		for _, f := range []string{"journey.yaml", "contacts.csv", "timeline.jsonl"} {
			if _, err := fs.Stat(s.exampleFS, path.Join(e.Name(), f)); err != nil {
				ok = false
			}
		}
		if ok {
			out = append(out, e.Name())
		}
	}
	return out
}

func (s *Server) simulatePage(ctx context.Context, f simForm) (*simulatePage, error) {
	p := &simulatePage{Form: f, MaxUpload: fmt.Sprintf("%d MB", s.maxUpload>>20)}
	js, err := s.store.JourneyList(ctx)
	if err != nil {
		return nil, err
	}
	for _, j := range js {
		if j.Status != nudge.JourneyArchived {
			p.Journeys = append(p.Journeys, simOption{"published:" + j.ID, j.Name + " (published v" + fmt.Sprint(j.Version) + ")"})
		}
	}
	for _, e := range s.examples() {
		p.Samples = append(p.Samples, simOption{"example:" + e, "examples/" + e})
	}
	return p, nil
}

func (s *Server) handleSimulateForm(w http.ResponseWriter, r *http.Request) {
	f := simForm{Journey: r.URL.Query().Get("journey"), Data: "upload"}
	if ex := s.examples(); len(ex) > 0 {
		f.Data = "example:" + ex[0]
	}
	p, err := s.simulatePage(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Form.Journey == "" && len(p.Journeys) > 0 {
		p.Form.Journey = p.Journeys[0].Value
	}
	s.render(w, r, http.StatusOK, "simulate.html", "Simulate", p)
}

// handleSimulate runs a journey on a virtual clock against the contacts and
// timeline given (uploaded, or an example's) and shows the decisions, the
// totals and the journey's report. Nothing is published or stored.
func (s *Server) handleSimulate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := simForm{Journey: r.PostFormValue("journey"), YAML: strings.ReplaceAll(r.PostFormValue("yaml"), "\r\n", "\n"), Data: r.PostFormValue("data"),
		From: r.PostFormValue("from"), To: r.PostFormValue("to")}
	p, err := s.simulatePage(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	bad := func(msg string) {
		p.Error = msg
		s.render(w, r, http.StatusBadRequest, "simulate.html", "Simulate", p)
	}
	from, to, err := dayRange(r.PostForm)
	if err != nil {
		bad(nudge.ErrorMessage(err))
		return
	}
	// The journey.
	var src []byte
	switch kind, name, _ := strings.Cut(f.Journey, ":"); kind {
	case "published":
		j, err := s.store.JourneyGet(ctx, name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v, err := s.store.JourneyVersionGet(ctx, j.ID, j.Version)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		src = v.Source
	case "example":
		if src, err = s.exampleFile(name, "journey.yaml"); err != nil {
			bad(err.Error())
			return
		}
	case "paste":
		if len(f.YAML) > maxSourceBytes {
			bad(fmt.Sprintf("The pasted journey is %d bytes; at most %d are accepted.", len(f.YAML), maxSourceBytes))
			return
		}
		src = []byte(f.YAML)
	default:
		bad("Choose a journey to simulate, or paste one.")
		return
	}
	def, ps, err := journeyProblems("journey.yaml", src)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps != nil {
		p.Problems, p.Lines = ps, numbered(string(src), ps)
		bad("The journey has problems; nothing was simulated.")
		return
	}
	// The contacts and the timeline.
	var contacts, timeline []byte
	if kind, name, _ := strings.Cut(f.Data, ":"); kind == "example" {
		if contacts, err = s.exampleFile(name, "contacts.csv"); err == nil {
			timeline, err = s.exampleFile(name, "timeline.jsonl")
		}
		if err != nil {
			bad(err.Error())
			return
		}
	} else {
		if contacts, err = formFile(r, "contacts"); err == nil {
			timeline, err = formFile(r, "timeline")
		}
		if err != nil {
			bad(err.Error())
			return
		}
		if timeline == nil {
			bad("Upload a timeline (JSON Lines, one identify or track call per line, each with a timestamp), or use an example's.")
			return
		}
	}
	norm := &ingest.ContactNormalizer{DefaultRegion: "US"}
	events, err := sim.ReadTimeline("timeline.jsonl", bytes.NewReader(timeline), norm)
	if err != nil {
		bad("The timeline has problems; nothing was simulated:\n" + err.Error())
		return
	}
	pol, err := s.currentPolicy(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	select {
	case s.simSlot <- struct{}{}:
		defer func() { <-s.simSlot }()
	default:
		p.Error = "Another simulation is running on this server; try again in a minute."
		s.render(w, r, http.StatusServiceUnavailable, "simulate.html", "Simulate", p)
		return
	}
	cfg := sim.Config{Journeys: []*journey.Journey{def}, Events: events, Normalizer: norm, Policy: pol, Logger: s.log, From: from, To: to}
	if contacts != nil {
		cfg.Contacts, cfg.ContactsName = bytes.NewReader(contacts), "contacts.csv"
	}
	keep, err := s.keepSimStore(&cfg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer keep.remove()
	rctx, cancel := context.WithTimeout(ctx, simTimeout)
	defer cancel()
	start := time.Now()
	res, err := sim.Run(rctx, cfg)
	p.Took = time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		bad(fmt.Sprintf("The simulation took longer than %s and was stopped: try fewer contacts or a shorter timeline.", simTimeout))
		return
	case err != nil:
		bad("The simulation could not run: " + err.Error())
		return
	}
	p.Result = res
	p.Contacts = res.Contacts[:min(len(res.Contacts), simContactsShown)]
	p.More = len(res.Contacts) - len(p.Contacts)
	p.Reports, p.NoReport = keep.reports(ctx, s, res)
	if kind, _, _ := strings.Cut(f.Journey, ":"); kind != "published" {
		p.PublishAction, p.PublishSource = "/journeys/new", string(src)
		if _, err := s.store.JourneyGet(ctx, def.ID); err == nil {
			p.PublishAction = "/journeys/" + def.ID + "/edit"
		}
	}
	s.log.InfoContext(ctx, "console simulation", "journey_id", def.ID, "events", len(events), "took", p.Took, "user_id", current(r).User.ID)
	s.render(w, r, http.StatusOK, "simulate.html", "Simulate", p)
}

// currentPolicy is the latest published policy (nil: the built-in default).
func (s *Server) currentPolicy(ctx context.Context) (*policy.Policy, error) {
	v, err := s.store.PolicyGet(ctx, 0)
	if nudge.ErrorCode(err) == nudge.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pol, err := policy.Parse("policy.yaml", v.Source)
	if err != nil {
		return nil, fmt.Errorf("web: policy version %d: %w", v.Version, err)
	}
	pol.Version = v.Version
	return pol, nil
}

func (s *Server) exampleFile(dir, name string) ([]byte, error) {
	if s.exampleFS == nil || !slices.Contains(s.examples(), dir) {
		return nil, fmt.Errorf("there is no example %q on this server", dir)
	}
	return fs.ReadFile(s.exampleFS, path.Join(dir, name))
}

// formFile reads an uploaded file field: nil when none was chosen.
func formFile(r *http.Request, field string) ([]byte, error) {
	f, _, err := r.FormFile(field)
	if errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: the upload could not be read: %v", field, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: the upload could not be read: %v", field, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// simKeep keeps a simulation's store file past sim.Run (which removes it)
// by linking it once the run has made it, so the journey report can be
// read from it, as `nudge simulate --report` does.
type simKeep struct {
	dir  string
	once bool
	err  error
}

func (s *Server) keepSimStore(cfg *sim.Config) (*simKeep, error) {
	if s.openStore == nil {
		return &simKeep{}, nil
	}
	dir, err := os.MkdirTemp("", "nudge-console-sim-")
	if err != nil {
		return nil, err
	}
	k := &simKeep{dir: dir}
	cfg.Dir = dir
	cfg.Reports = true // the report reads the counters a slim store drops
	cfg.Progress = func(time.Time) {
		if !k.once {
			k.once = true
			k.err = os.Link(filepath.Join(dir, "sim.db"), filepath.Join(dir, "report.db"))
		}
	}
	return k, nil
}

func (k *simKeep) remove() {
	if k.dir != "" {
		os.RemoveAll(k.dir)
	}
}

// reports builds the report of each journey the simulation published, or
// says why it cannot.
func (k *simKeep) reports(ctx context.Context, s *Server, res *sim.Report) ([]simJourneyReport, string) {
	if k.dir == "" {
		return nil, "This server was started without a way to open the simulation's store, so only the totals are shown."
	}
	if k.err != nil || !k.once {
		return nil, fmt.Sprintf("The simulation's store could not be kept for its report (%v).", k.err)
	}
	st, err := s.openStore(ctx, filepath.Join(k.dir, "report.db"))
	if err != nil {
		return nil, "The simulation's store could not be opened for its report: " + err.Error()
	}
	defer st.Close()
	var out []simJourneyReport
	for _, j := range res.Journeys {
		rep, err := report.Journey(ctx, st, &nudge.ReportParams{JourneyID: j.ID}, report.Options{})
		if err != nil {
			return nil, "The journey report could not be built: " + err.Error()
		}
		out = append(out, simJourneyReport{Report: rep, Charts: drawReport(rep)})
	}
	return out, ""
}
