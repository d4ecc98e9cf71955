package api

import (
	"net/http"

	"github.com/nudge/nudge"
)

// pauseRoutes are the SMS steps paused on their opt-out rate: reading for
// the read role, resuming for admins.
func (s *Server) pauseRoutes(read, admin func(string, http.HandlerFunc)) {
	read("GET /v1/journeys/{id}/pauses", s.handlePauseList)
	admin("POST /v1/journeys/{id}/steps/{step}/resume", s.handleStepResume)
}

// handlePauseList lists a journey's step pauses, newest first: those that
// hold, or with ?all=true the resumed ones too.
func (s *Server) handlePauseList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.store.JourneyGet(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.StepPauseList(r.Context(), &nudge.StepPauseListParams{JourneyID: id, Active: r.URL.Query().Get("all") != "true"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pauses": list})
}

// handleStepResume ends the pause of a step: its sends go again, and the
// opt-out rate that paused it is counted afresh from now. 404 when the
// step is not paused.
func (s *Server) handleStepResume(w http.ResponseWriter, r *http.Request) {
	by := "api"
	if k := requestKey(r); k != nil {
		by = "apikey:" + k.ID
	}
	p, err := s.store.StepResume(r.Context(), r.PathValue("id"), r.PathValue("step"), by, s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
