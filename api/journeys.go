package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// maxJourneyBytes caps a journey file sent to validate or publish.
const maxJourneyBytes = 1 << 20

// problemJSON is one validation problem, as the API shows it.
type problemJSON struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

// validationResponse answers POST /v1/journeys/validate, and a publish of
// an invalid file (with an error).
type validationResponse struct {
	Error    *errorBody    `json:"error,omitempty"`
	Valid    bool          `json:"valid"`
	ID       string        `json:"id,omitempty"`
	Name     string        `json:"name,omitempty"`
	Problems []problemJSON `json:"problems"`
}

// refusePublish answers 400 to a publish of a file (what: "journey",
// "policy") with problems, listing every one.
func refusePublish(w http.ResponseWriter, what string, problems []problemJSON) {
	msg := fmt.Sprintf("the %s has %d problems; nothing was published", what, len(problems))
	if len(problems) == 1 {
		msg = "the " + what + " has a problem; nothing was published"
	}
	writeJSON(w, http.StatusBadRequest, validationResponse{
		Error:    &errorBody{Code: nudge.EINVALID, Message: msg},
		Problems: problems,
	})
}

// parseJourney reads a YAML body and parses it. A file with problems gives
// problems and no error; err is for a body that could not be read.
// Templates are not checked here: the server keeps no template folder yet.
func (s *Server) parseJourney(w http.ResponseWriter, r *http.Request) (*journey.Journey, []problemJSON, error) {
	body, err := readBody(w, r, maxJourneyBytes)
	if err != nil {
		return nil, nil, err
	}
	if len(body) == 0 {
		return nil, nil, nudge.Errorf(nudge.EINVALID, "the request body is empty; send the journey's YAML")
	}
	j, err := journey.Parse("journey.yaml", body, journey.Options{})
	var ve *journey.ValidationError
	if errors.As(err, &ve) {
		ps := make([]problemJSON, len(ve.Problems))
		for i, p := range ve.Problems {
			ps[i] = problemJSON{Line: p.Line, Col: p.Col, Message: p.Message}
		}
		return nil, ps, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return j, []problemJSON{}, nil
}

// handleJourneyValidate answers whether a journey file is valid, with every
// problem and its line and column. It stores nothing.
func (s *Server) handleJourneyValidate(w http.ResponseWriter, r *http.Request) {
	j, problems, err := s.parseJourney(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := validationResponse{Valid: j != nil, Problems: problems}
	if j != nil {
		resp.ID, resp.Name = j.ID, j.Name
	}
	writeJSON(w, http.StatusOK, resp)
}

// publishResponse answers a publish: the journey and the version it is at.
type publishResponse struct {
	Journey *nudge.Journey        `json:"journey"`
	Version *nudge.JourneyVersion `json:"version"`
	Created bool                  `json:"created"` // false: the source equals the latest version's
}

// handleJourneyPublish validates a journey file and publishes it as the
// journey's next version: 201 when a version was made, 200 when the file
// equals the latest version, 400 with every problem when it is invalid (an
// invalid file is never published).
func (s *Server) handleJourneyPublish(w http.ResponseWriter, r *http.Request) {
	j, problems, err := s.parseJourney(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if j == nil {
		refusePublish(w, "journey", problems)
		return
	}
	v, created, err := s.store.JourneyPublish(r.Context(), &nudge.JourneyPublishParams{
		ID: j.ID, Name: j.Name, Source: j.Source, Hash: j.Hash(),
	}, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	meta, err := s.store.JourneyGet(r.Context(), j.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, publishResponse{Journey: meta, Version: v, Created: created})
}

// handleJourneyList lists journeys by id. Archived journeys are left out
// unless ?status=archived or ?all=true asks for them.
func (s *Server) handleJourneyList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", nudge.JourneyActive, nudge.JourneyPaused, nudge.JourneyArchived:
	default:
		s.fail(w, r, nudge.FieldErrorf("status", "%q is not a journey status; use active, paused or archived", status))
		return
	}
	all, _ := strconv.ParseBool(q.Get("all"))
	list, err := s.store.JourneyList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]*nudge.Journey, 0, len(list))
	for _, j := range list {
		switch {
		case status != "" && j.Status != status:
		case status == "" && !all && j.Status == nudge.JourneyArchived:
		default:
			out = append(out, j)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"journeys": out})
}

// journeyDetail is a journey with its versions (without their sources)
// and its steps paused on their opt-out rate.
type journeyDetail struct {
	*nudge.Journey
	Versions    []*nudge.JourneyVersion `json:"versions"`
	PausedSteps []*nudge.StepPause      `json:"paused_steps"`
}

func (s *Server) handleJourneyGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := s.store.JourneyGet(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.store.JourneyVersionList(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	paused, err := s.store.StepPauseList(r.Context(), &nudge.StepPauseListParams{JourneyID: id, Active: true})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, journeyDetail{Journey: j, Versions: vs, PausedSteps: paused})
}

// versionJSON is a version with its source as text.
type versionJSON struct {
	*nudge.JourneyVersion
	Source string `json:"source"`
}

// handleJourneyVersionGet answers one version with its source: JSON by
// default, the YAML file itself when the client accepts only YAML or text
// (or asks ?format=yaml).
func (s *Server) handleJourneyVersionGet(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseInt(r.PathValue("v"), 10, 64)
	if err != nil || v < 1 {
		s.fail(w, r, nudge.FieldErrorf("version", "%q is not a version number; versions are 1, 2, …", r.PathValue("v")))
		return
	}
	jv, err := s.store.JourneyVersionGet(r.Context(), r.PathValue("id"), v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "yaml" {
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(jv.Source)
		return
	}
	writeJSON(w, http.StatusOK, versionJSON{JourneyVersion: jv, Source: string(jv.Source)})
}

// handleJourneyStatus pauses, resumes or archives a journey.
func (s *Server) handleJourneyStatus(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if status == nudge.JourneyActive {
			cur, err := s.store.JourneyGet(r.Context(), id)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if cur.Status == nudge.JourneyArchived {
				s.fail(w, r, nudge.Errorf(nudge.ECONFLICT, "journey %q is archived; publish it again to make it active", id))
				return
			}
		}
		if err := s.store.JourneySetStatus(r.Context(), id, status, s.clock.Now()); err != nil {
			s.fail(w, r, err)
			return
		}
		j, err := s.store.JourneyGet(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, j)
	}
}

// journeyRoutes registers the journey routes: reading for the read role,
// changes for admins. Validation stores nothing, so read keys may use it.
func (s *Server) journeyRoutes(read, admin func(string, http.HandlerFunc)) {
	read("GET /v1/journeys", s.handleJourneyList)
	read("GET /v1/journeys/{id}", s.handleJourneyGet)
	read("GET /v1/journeys/{id}/versions/{v}", s.handleJourneyVersionGet)
	read("POST /v1/journeys/validate", s.handleJourneyValidate)
	admin("POST /v1/journeys", s.handleJourneyPublish)
	admin("POST /v1/journeys/{id}/pause", s.handleJourneyStatus(nudge.JourneyPaused))
	admin("POST /v1/journeys/{id}/resume", s.handleJourneyStatus(nudge.JourneyActive))
	admin("POST /v1/journeys/{id}/archive", s.handleJourneyStatus(nudge.JourneyArchived))
}
