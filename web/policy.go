package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
)

type policyPage struct {
	Policy   *api.PolicyJSON
	Versions []*nudge.PolicyVersion
	Pages    pager
	Lines    []srcLine
	Source   string // the editor's text
	Problems []problem
	Diff     []diffLine // from the version before the one shown
	Prev     int64
}

func (s *Server) policyPage(r *http.Request) (*policyPage, error) {
	ctx := r.Context()
	var version int64
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return nil, nudge.FieldErrorf("version", "%q is not a version number; versions are 1, 2, …", v)
		}
		version = n
	}
	pol, err := api.CurrentPolicy(ctx, s.store, version)
	if err != nil {
		return nil, err
	}
	vs, err := s.store.PolicyVersionList(ctx)
	if err != nil {
		return nil, err
	}
	slices.Reverse(vs) // newest first
	p := &policyPage{Policy: pol, Lines: numbered(pol.Source, nil)}
	p.Versions, p.Pages = paginate(r, "versions", vs)
	latest, err := api.CurrentPolicy(ctx, s.store, 0)
	if err != nil {
		return nil, err
	}
	p.Source = latest.Source
	if pol.Version > 1 {
		old, err := s.store.PolicyGet(ctx, pol.Version-1)
		if err != nil {
			return nil, err
		}
		p.Prev, p.Diff = old.Version, lineDiff(string(old.Source), pol.Source)
	}
	return p, nil
}

func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.policyPage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	title := "Policy"
	if p.Policy.Version > 0 {
		title = fmt.Sprintf("Policy, version %d", p.Policy.Version)
	}
	s.render(w, r, http.StatusOK, "policy.html", title, p)
}

// handlePolicyPublish validates the edited policy and publishes it as the
// next version; with problems, it shows them at their lines.
func (s *Server) handlePolicyPublish(w http.ResponseWriter, r *http.Request) {
	src, ps := sourceField(r)
	if ps == nil {
		var err error
		if ps, err = policyProblems([]byte(src)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if ps != nil {
		p, err := s.policyPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Source, p.Problems, p.Lines = src, ps, numbered(src, ps)
		s.render(w, r, http.StatusBadRequest, "policy.html", "Policy", p)
		return
	}
	v, created, err := s.store.PolicyPublish(r.Context(), []byte(src), "", s.clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "console policy publish", "version", v.Version, "created", created, "user_id", current(r).User.ID)
	http.Redirect(w, r, "/policy?version="+strconv.FormatInt(v.Version, 10), http.StatusSeeOther)
}
