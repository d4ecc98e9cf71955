package api

import (
	"net/http"

	"github.com/nudge/nudge"
)

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, nudge.Errorf(nudge.EINTERNAL, "not yet"))
}
