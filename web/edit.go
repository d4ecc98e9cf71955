package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
)

// maxSourceBytes caps a journey or policy file typed into the console.
const maxSourceBytes = 512 << 10

// problem is one validation problem at a line (0: the whole file).
type problem struct {
	Line, Col int
	Message   string
}

// srcLine is one numbered line of a file, with the problems found on it.
type srcLine struct {
	N        int
	Text     string
	Problems []string
}

// numbered splits src into numbered lines and hangs each problem on its line.
func numbered(src string, ps []problem) []srcLine {
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	out := make([]srcLine, len(lines))
	for i, l := range lines {
		out[i] = srcLine{N: i + 1, Text: l}
	}
	for _, p := range ps {
		if p.Line >= 1 && p.Line <= len(out) {
			out[p.Line-1].Problems = append(out[p.Line-1].Problems, p.Message)
		}
	}
	return out
}

// journeyProblems returns the problems of a journey file (nil, nil when it
// is valid) or the error of a file that could not be judged.
func journeyProblems(name string, src []byte) (*journey.Journey, []problem, error) {
	j, err := journey.Parse(name, src, journey.Options{})
	var ve *journey.ValidationError
	if errors.As(err, &ve) {
		ps := make([]problem, len(ve.Problems))
		for i, p := range ve.Problems {
			ps[i] = problem{Line: p.Line, Col: p.Col, Message: p.Message}
		}
		return nil, ps, nil
	}
	return j, nil, err
}

// policyProblems is journeyProblems for a policy file.
func policyProblems(src []byte) ([]problem, error) {
	_, err := policy.Parse("policy.yaml", src)
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		ps := make([]problem, len(ve.Problems))
		for i, p := range ve.Problems {
			ps[i] = problem{Line: p.Line, Col: p.Col, Message: p.Message}
		}
		return ps, nil
	}
	return nil, err
}

// sourceField reads a form's source field: its text, or a problem when it
// is empty or too long.
func sourceField(r *http.Request) (string, []problem) {
	src := strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n")
	switch {
	case strings.TrimSpace(src) == "":
		return src, []problem{{Message: "The file is empty: paste or type the YAML."}}
	case len(src) > maxSourceBytes:
		return src, []problem{{Message: fmt.Sprintf("The file is %d bytes; at most %d are accepted here.", len(src), maxSourceBytes)}}
	}
	return src, nil
}

type editPage struct {
	Journey  *nudge.Journey // nil for a new journey
	Action   string         // where the form posts
	Source   string
	Problems []problem
	Lines    []srcLine
}

func (s *Server) handleJourneyEdit(w http.ResponseWriter, r *http.Request) {
	j, ok := s.pathJourney(w, r)
	if !ok {
		return
	}
	v, err := s.store.JourneyVersionGet(r.Context(), j.ID, j.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "edit.html", "Edit "+j.Name, &editPage{Journey: j, Action: "/journeys/" + j.ID + "/edit", Source: string(v.Source)})
}

// handleJourneyPublish validates the edited file and publishes it as the
// journey's next version; with problems, it shows them at their lines and
// publishes nothing.
func (s *Server) handleJourneyPublish(w http.ResponseWriter, r *http.Request) {
	j, ok := s.pathJourney(w, r)
	if !ok {
		return
	}
	s.publishForm(w, r, "Edit "+j.Name, &editPage{Journey: j, Action: "/journeys/" + j.ID + "/edit"},
		func(def *journey.Journey) ([]problem, error) {
			if def.ID != j.ID {
				return []problem{{Message: fmt.Sprintf("the file's id is %q, but this page publishes %q: keep the id, or publish the file as a new journey", def.ID, j.ID)}}, nil
			}
			return nil, nil
		},
		func(v *nudge.JourneyVersion) string {
			return "/journeys/" + j.ID + "/versions/" + strconv.FormatInt(v.Version, 10)
		})
}

// publishForm validates the form's journey file, then check's problems,
// and publishes it, redirecting to next; with problems it shows page again
// with them at their lines (a problem without a line is put at the id's).
func (s *Server) publishForm(w http.ResponseWriter, r *http.Request, title string, page *editPage,
	check func(*journey.Journey) ([]problem, error), next func(*nudge.JourneyVersion) string) {
	ctx := r.Context()
	src, ps := sourceField(r)
	var (
		def *journey.Journey
		err error
	)
	if ps == nil {
		if def, ps, err = journeyProblems("journey.yaml", []byte(src)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if ps == nil {
		if ps, err = check(def); err != nil {
			s.fail(w, r, err)
			return
		}
		for i := range ps {
			if ps[i].Line == 0 {
				ps[i].Line = idLine(src)
			}
		}
	}
	if ps != nil {
		page.Source, page.Problems, page.Lines = src, ps, numbered(src, ps)
		s.render(w, r, http.StatusBadRequest, "edit.html", title, page)
		return
	}
	v, created, err := s.store.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: def.ID, Name: def.Name, Source: def.Source, Hash: def.Hash()}, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "console journey publish", "journey_id", def.ID, "version", v.Version, "created", created, "user_id", current(r).User.ID)
	http.Redirect(w, r, next(v), http.StatusSeeOther)
}

// newJourney is the text the new-journey page starts from.
const newJourney = `# A journey: see docs/journeys.md for every field.
id: my-journey
name: My journey
trigger:
  event: webinar.registered
steps:
  - id: welcome
    email: {template: welcome}
`

func (s *Server) handleJourneyNew(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "edit.html", "New journey", &editPage{Action: "/journeys/new", Source: newJourney})
}

// handleJourneyCreate validates a new journey's file and publishes it as
// version 1; a file with problems, or with the id of a journey that
// exists, is shown again with the problems at their lines.
func (s *Server) handleJourneyCreate(w http.ResponseWriter, r *http.Request) {
	var id string
	s.publishForm(w, r, "New journey", &editPage{Action: "/journeys/new"},
		func(def *journey.Journey) ([]problem, error) {
			id = def.ID
			_, err := s.store.JourneyGet(r.Context(), def.ID)
			switch {
			case err == nil:
				return []problem{{Message: fmt.Sprintf("a journey with the id %q exists: choose another id, or edit it from its page", def.ID)}}, nil
			case nudge.ErrorCode(err) == nudge.ENOTFOUND:
				return nil, nil
			}
			return nil, err
		},
		func(*nudge.JourneyVersion) string { return "/journeys/" + id })
}

// idLine is the line of a file's top-level id, 0 if there is none.
func idLine(src string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.HasPrefix(l, "id:") {
			return i + 1
		}
	}
	return 0
}

type versionPage struct {
	Journey *nudge.Journey
	Version *nudge.JourneyVersion
	Lines   []srcLine
	Diff    []diffLine
	Prev    int64
}

func (s *Server) handleJourneyVersion(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	j, ok := s.pathJourney(w, r)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || n < 1 {
		s.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a version: versions are 1, 2, …", r.PathValue("version")))
		return
	}
	v, err := s.store.JourneyVersionGet(ctx, j.ID, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := &versionPage{Journey: j, Version: v, Lines: numbered(string(v.Source), nil)}
	if n > 1 {
		old, err := s.store.JourneyVersionGet(ctx, j.ID, n-1)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Prev, p.Diff = n-1, lineDiff(string(old.Source), string(v.Source))
	}
	s.render(w, r, http.StatusOK, "version.html", fmt.Sprintf("%s, version %d", j.Name, n), p)
}

// diffLine is one line of a diff: Op is ' ' (kept), '-' (removed) or '+' (added).
type diffLine struct {
	Op       string
	Old, New int // line numbers, 0 where the line is not on that side
	Text     string
}

// maxDiffCells bounds the longest-common-subsequence table; beyond it the
// diff shows the whole old file removed and the new one added.
const maxDiffCells = 4 << 20

// lineDiff is a line diff of a and b by longest common subsequence.
func lineDiff(a, b string) []diffLine {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	var out []diffLine
	if len(x)*len(y) > maxDiffCells {
		for i, l := range x {
			out = append(out, diffLine{Op: "-", Old: i + 1, Text: l})
		}
		for i, l := range y {
			out = append(out, diffLine{Op: "+", New: i + 1, Text: l})
		}
		return out
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{Op: " ", Old: i + 1, New: j + 1, Text: x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, diffLine{Op: "-", Old: i + 1, Text: x[i]})
			i++
		default:
			out = append(out, diffLine{Op: "+", New: j + 1, Text: y[j]})
			j++
		}
	}
	return out
}

// changed reports whether a diff has any added or removed line.
func changed(d []diffLine) bool {
	for _, l := range d {
		if l.Op != " " {
			return true
		}
	}
	return false
}
