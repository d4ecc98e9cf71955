package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config wires the console.
type Config struct {
	Store  nudge.Store
	Clock  nudge.Clock  // default nudge.SystemClock
	Logger *slog.Logger // default: discard
	// Users keeps console users and sessions. Nil: Store, if it is one.
	Users nudge.UserStore
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// Examples is the examples folder (examples/ of the repository): the
	// simulate page offers each example's contacts and timeline. Nil: none.
	Examples fs.FS
	// OpenStore opens the SQLite file a simulation leaves, so that the
	// simulate page shows the journey's report as well as the totals.
	// Nil: totals only.
	OpenStore func(ctx context.Context, path string) (nudge.Store, error)
	// Providers is what the settings page says of each channel's provider.
	Providers []Provider
	// MaxUpload bounds a form with files, the simulate page's (default 4 MiB).
	MaxUpload int64
}

// Server serves the console.
type Server struct {
	store   nudge.Store
	users   nudge.UserStore
	clock   nudge.Clock
	log     *slog.Logger
	ttl     time.Duration
	pages   map[string]*template.Template
	limiter *limiter
	handler http.Handler

	exampleFS fs.FS
	openStore func(ctx context.Context, path string) (nudge.Store, error)
	maxUpload int64
	simSlot   chan struct{} // one simulation at a time
	providers []Provider
}

// New returns a console server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: Config.Store is required")
	}
	s := &Server{
		store: cfg.Store,
		users: cfg.Users,
		clock: cmp.Or[nudge.Clock](cfg.Clock, nudge.SystemClock{}),
		log:   cfg.Logger,
		ttl:   cmp.Or(cfg.SessionTTL, 12*time.Hour),

		exampleFS: cfg.Examples,
		openStore: cfg.OpenStore,
		maxUpload: cmp.Or(cfg.MaxUpload, 4<<20),
		simSlot:   make(chan struct{}, 1),
		providers: cfg.Providers,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.users == nil {
		s.users = cfg.Store
	}
	s.limiter = newLimiter(s.clock)
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the console's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	mux.HandleFunc("GET /login", s.handleLoginForm)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.signedIn(nudge.UserViewer, s.handleLogout))
	mux.HandleFunc("GET /{$}", s.signedIn(nudge.UserViewer, s.handleOverview))
	mux.HandleFunc("GET /journeys/{id}", s.signedIn(nudge.UserViewer, s.handleJourney))
	mux.HandleFunc("POST /journeys/{id}/pause", s.signedIn(nudge.UserEditor, s.handleSetStatus(nudge.JourneyPaused)))
	mux.HandleFunc("POST /journeys/{id}/resume", s.signedIn(nudge.UserEditor, s.handleSetStatus(nudge.JourneyActive)))
	mux.HandleFunc("POST /journeys/{id}/steps/{step}/resume", s.signedIn(nudge.UserAdmin, s.handleStepResume))
	mux.HandleFunc("GET /journeys/new", s.signedIn(nudge.UserEditor, s.handleJourneyNew))
	mux.HandleFunc("POST /journeys/new", s.signedIn(nudge.UserEditor, s.handleJourneyCreate))
	mux.HandleFunc("GET /journeys/{id}/edit", s.signedIn(nudge.UserEditor, s.handleJourneyEdit))
	mux.HandleFunc("POST /journeys/{id}/edit", s.signedIn(nudge.UserEditor, s.handleJourneyPublish))
	mux.HandleFunc("GET /journeys/{id}/versions/{version}", s.signedIn(nudge.UserViewer, s.handleJourneyVersion))
	mux.HandleFunc("GET /messages", s.signedIn(nudge.UserViewer, s.handleMessages))
	mux.HandleFunc("GET /messages/{id}", s.signedIn(nudge.UserViewer, s.handleMessage))
	mux.HandleFunc("GET /simulate", s.signedIn(nudge.UserEditor, s.handleSimulateForm))
	mux.HandleFunc("POST /simulate", s.signedIn(nudge.UserEditor, s.handleSimulate))
	mux.HandleFunc("GET /policy", s.signedIn(nudge.UserViewer, s.handlePolicy))
	mux.HandleFunc("POST /policy", s.signedIn(nudge.UserAdmin, s.handlePolicyPublish))
	mux.HandleFunc("GET /settings", s.signedIn(nudge.UserAdmin, s.handleSettings))
	mux.HandleFunc("POST /settings/apikeys", s.signedIn(nudge.UserAdmin, s.handleAPIKeyCreate))
	mux.HandleFunc("POST /settings/apikeys/{id}/revoke", s.signedIn(nudge.UserAdmin, s.handleAPIKeyRevoke))
	mux.HandleFunc("POST /settings/webhooks", s.signedIn(nudge.UserAdmin, s.handleWebhookCreate))
	mux.HandleFunc("GET /settings/webhooks/{id}", s.signedIn(nudge.UserAdmin, s.handleWebhookLog))
	mux.HandleFunc("POST /settings/webhooks/{id}/delete", s.signedIn(nudge.UserAdmin, s.handleWebhookDelete))
	mux.HandleFunc("POST /settings/users", s.signedIn(nudge.UserAdmin, s.handleUserCreate))
	mux.HandleFunc("GET /contacts", s.signedIn(nudge.UserViewer, s.handleContactSearch))
	mux.HandleFunc("GET /contacts/{id}", s.signedIn(nudge.UserViewer, s.handleContact))
	mux.HandleFunc("/", s.signedIn(nudge.UserViewer, func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "There is no page here.")
	}))
	return secureHeaders(mux)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// sessionCookie names the cookie holding the session token.
const sessionCookie = "nudge_session"

type ctxKey struct{}

// who is the signed-in user of a request and their session.
type who struct {
	User    *nudge.User
	Session *nudge.Session
}

func current(r *http.Request) *who {
	w, _ := r.Context().Value(ctxKey{}).(*who)
	return w
}

var roleRank = map[string]int{nudge.UserViewer: 1, nudge.UserEditor: 2, nudge.UserAdmin: 3}

// can reports whether a role has at least the rights of need.
func can(role, need string) bool { return roleRank[role] >= roleRank[need] && roleRank[need] > 0 }

// signedIn runs h for a signed-in user with at least role need; others are
// sent to the sign-in page (GET) or refused (POST). Every POST must carry
// the session's CSRF token.
func (s *Server) signedIn(need string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.users == nil {
			s.errorPage(w, r, http.StatusServiceUnavailable, "This store does not keep console users yet.")
			return
		}
		u, sess, err := s.session(r)
		if err != nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.errorPage(w, r, http.StatusUnauthorized, "Sign in first.")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, &who{User: u, Session: sess}))
		if r.Method == http.MethodPost {
			if !s.readForm(w, r) {
				return
			}
			if !sameToken(r.PostFormValue("csrf"), sess.CSRF) {
				s.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this console (CSRF token missing or wrong). Reload the page and try again.")
				return
			}
		}
		if !can(u.Role, need) {
			s.errorPage(w, r, http.StatusForbidden, fmt.Sprintf("Your role (%s) cannot do this; it needs %s.", u.Role, need))
			return
		}
		h(w, r)
	}
}

// readForm reads a POST's form, files included, within its bound: 1 MiB,
// or MaxUpload for a form with files. A larger body is refused with 413.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) bool {
	limit := int64(1 << 20)
	multipart := strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
	if multipart {
		limit = s.maxUpload
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if multipart {
		err = r.ParseMultipartForm(limit)
	} else {
		err = r.ParseForm()
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || r.ContentLength > limit:
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is larger than this page accepts (%d MB); nothing was done. Send smaller files.", max(limit>>20, 1)))
		return false
	case err != nil:
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return false
	}
	return true
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// session returns the user and session of the request's cookie.
func (s *Server) session(r *http.Request) (*nudge.User, *nudge.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, errors.New("no session")
	}
	sess, err := s.users.SessionGet(r.Context(), tokenHash(c.Value), s.clock.Now())
	if err != nil {
		return nil, nil, err
	}
	u, err := s.users.UserGet(r.Context(), sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	return u, sess, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secure reports whether the browser reached us over TLS (directly or
// through a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// APIPaths are the path prefixes the JSON API answers on the console's
// server: its /v1/ routes, health and metrics, and the click and
// unsubscribe links in messages.
var APIPaths = []string{"/v1/", "/healthz", "/readyz", "/metrics", "/c/", "/u/"}

// Combine serves api on APIPaths and the console everywhere else: one
// server, one port (see cmd/nudge serve).
func Combine(api, console http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range APIPaths {
		mux.Handle(p, api)
	}
	mux.Handle("/", console)
	return mux
}
