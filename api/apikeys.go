package api

import (
	"net/http"
	"strings"

	"github.com/nudge/nudge"
)

// apiKeyCreated is the answer to POST /v1/apikeys: the only time the token
// is shown.
type apiKeyCreated struct {
	*nudge.APIKey
	Token string `json:"token"`
}

func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, 4<<10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Role string `json:"role"`
		Name string `json:"name"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if !contains(nudge.Roles, req.Role) {
		s.fail(w, r, nudge.FieldErrorf("role", "%q is not one of %s", req.Role, strings.Join(nudge.Roles, ", ")))
		return
	}
	if len(req.Name) > 200 {
		s.fail(w, r, nudge.FieldErrorf("name", "is longer than 200 bytes"))
		return
	}
	k, token := nudge.NewAPIKey(req.Role, req.Name, s.clock.Now())
	if err := s.store.APIKeyCreate(r.Context(), k); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, apiKeyCreated{APIKey: k, Token: token})
}

func (s *Server) handleAPIKeyList(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.APIKeyList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if keys == nil {
		keys = []*nudge.APIKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": keys})
}

// handleAPIKeyRevoke revokes a key. This server forgets it at once; other
// servers sharing the database within their key cache TTL.
func (s *Server) handleAPIKeyRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.APIKeyRevoke(r.Context(), id, s.clock.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.keys.forget(id)
	w.WriteHeader(http.StatusNoContent)
}
