package api

import (
	"net/http"
)

// handleContactStages lists a contact's lifecycle_stage and journey_stage
// changes, oldest first, each with what made it.
func (s *Server) handleContactStages(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.store.ContactGet(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.ContactStageList(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": list})
}
