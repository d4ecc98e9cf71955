package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
)

// loginCookie carries the sign-in form's CSRF token before there is a
// session (double submit: the cookie and the hidden field must match).
const loginCookie = "nudge_login"

type loginPage struct {
	Email, Next, Error string
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, &loginPage{Next: r.URL.Query().Get("next")})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, p *loginPage) {
	// Reuse the browser's token: a second tab (or a favicon request sent to
	// sign-in) must not invalidate the form already shown.
	tok := randomToken()
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == len(tok) {
		tok = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r), MaxAge: 3600})
	s.render(w, r, status, "login.html", "Sign in", p, tok)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.users == nil {
		s.errorPage(w, r, http.StatusServiceUnavailable, "This store does not keep console users yet.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	p := &loginPage{Email: email, Next: r.PostFormValue("next")}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		p.Error = "The sign-in form expired. Please try again."
		s.renderLogin(w, r, http.StatusForbidden, p)
		return
	}
	ip := clientIP(r)
	if !s.limiter.allow("ip:"+ip, 20) || !s.limiter.allow("email:"+email, 5) {
		p.Error = "Too many sign-in attempts. Wait a few minutes and try again."
		s.renderLogin(w, r, http.StatusTooManyRequests, p)
		return
	}
	u, err := s.users.UserByEmail(r.Context(), email)
	if err != nil && nudge.ErrorCode(err) != nudge.ENOTFOUND {
		s.fail(w, r, err)
		return
	}
	var hash []byte
	if u != nil {
		hash = u.PasswordHash
	} else {
		hash = dummyHash // spend the same time whether the user exists or not
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(r.PostFormValue("password"))) != nil || u == nil {
		s.limiter.fail("ip:" + ip)
		s.limiter.fail("email:" + email)
		p.Error = "That email and password do not match a user."
		s.renderLogin(w, r, http.StatusUnauthorized, p)
		return
	}
	s.limiter.reset("email:" + email)
	token, now := randomToken(), s.clock.Now()
	sess := &nudge.Session{TokenHash: tokenHash(token), UserID: u.ID, CSRF: randomToken(), CreatedAt: now, ExpiresAt: now.Add(s.ttl)}
	if err := s.users.SessionCreate(r.Context(), sess); err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secure(r), MaxAge: int(s.ttl.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	s.log.InfoContext(r.Context(), "console sign-in", "user_id", u.ID, "ip", ip)
	http.Redirect(w, r, safeNext(p.Next), http.StatusSeeOther)
}

// dummyHash is compared against when the email is unknown.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.IsAbs() || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.users.SessionDelete(r.Context(), current(r).Session.TokenHash); err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts failed sign-ins per key (an IP or an email) in a sliding
// window, in memory: enough for one node; each node limits on its own.
type limiter struct {
	clock  nudge.Clock
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func newLimiter(c nudge.Clock) *limiter {
	return &limiter{clock: c, window: 15 * time.Minute, fails: map[string][]time.Time{}}
}

// allow reports whether key has had fewer than max failures in the window.
func (l *limiter) allow(key string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(key)) < max
}

func (l *limiter) recent(key string) []time.Time {
	cut := l.clock.Now().Add(-l.window)
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = ts
	}
	return ts
}

func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100000 { // a flood of keys: forget, rather than grow without end
		l.fails = map[string][]time.Time{}
	}
	l.fails[key] = append(l.recent(key), l.clock.Now())
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
