package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// page is what every template gets: the layout's fields and the page's Data.
type page struct {
	Title string
	User  *nudge.User
	CSRF  string
	Path  string
	Data  any
}

// CanEdit reports whether the signed-in user may pause and resume journeys.
func (p *page) CanEdit() bool { return p.User != nil && can(p.User.Role, nudge.UserEditor) }

// IsAdmin reports whether the signed-in user may change settings.
func (p *page) IsAdmin() bool { return p.User != nil && can(p.User.Role, nudge.UserAdmin) }

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"join":    strings.Join,
	"prev":    func(v int64) int64 { return v - 1 },
	"changed": changed,
	"next":    func(v int64) int64 { return v + 1 },
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page in the layout. csrf overrides the session's token
// (the sign-in form has its own).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any, csrf ...string) {
	p := &page{Title: title, Data: data, Path: r.URL.Path}
	if c := current(r); c != nil {
		p.User, p.CSRF = c.User, c.Session.CSRF
	}
	if len(csrf) > 0 {
		p.CSRF = csrf[0]
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error.html", http.StatusText(status), msg)
}

// fail shows err: not found and invalid input as they are, other errors
// logged and shown as an internal error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch nudge.ErrorCode(err) {
	case nudge.ENOTFOUND:
		s.errorPage(w, r, http.StatusNotFound, nudge.ErrorMessage(err))
	case nudge.EINVALID:
		s.errorPage(w, r, http.StatusBadRequest, nudge.ErrorMessage(err))
	case nudge.ECONFLICT:
		s.errorPage(w, r, http.StatusConflict, nudge.ErrorMessage(err))
	default:
		s.log.ErrorContext(r.Context(), "console request", "path", r.URL.Path, "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
	}
}
