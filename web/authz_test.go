package web_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/web"
)

// Who may use each console route. A route registered in web/*.go that is
// missing here fails TestConsoleAuthorization, naming it: add it with the
// role it needs.
//
//	public: no session at all; the answer does not depend on who asks.
//	viewer, editor, admin: a session of at least that role; signed out is a
//	  redirect to /login (GET) or 401 (POST), a lower role 403.
//
// A pattern without a method ("/") is listed as "ANY /" and called with GET
// and POST.
var consoleExpect = map[string]string{
	"GET /static/":     "public",
	"GET /favicon.ico": "public",
	"GET /login":       "public",
	"POST /login":      "public",

	"POST /logout":                            "viewer",
	"GET /{$}":                                "viewer",
	"GET /journeys/{id}":                      "viewer",
	"POST /journeys/{id}/pause":               "editor",
	"POST /journeys/{id}/resume":              "editor",
	"GET /contacts":                           "viewer",
	"GET /journeys/{id}/edit":                 "editor",
	"POST /journeys/{id}/edit":                "editor",
	"GET /journeys/{id}/versions/{version}":   "viewer",
	"GET /messages":                           "viewer",
	"GET /messages/{id}":                      "viewer",
	"GET /contacts/{id}":                      "viewer",
	"GET /simulate":                           "editor",
	"POST /simulate":                          "editor",
	"GET /policy":                             "viewer",
	"POST /policy":                            "admin",
	"GET /settings":                           "admin",
	"POST /settings/apikeys":                  "admin",
	"POST /settings/apikeys/{id}/revoke":      "admin",
	"POST /settings/webhooks":                 "admin",
	"GET /settings/webhooks/{id}":             "admin",
	"POST /settings/webhooks/{id}/delete":     "admin",
	"POST /settings/users":                    "admin",
	"POST /journeys/{id}/steps/{step}/resume": "admin",
	"GET /journeys/new":                       "editor",
	"POST /journeys/new":                      "editor",
	"ANY /":                                   "viewer",
}

// consoleRoute is a pattern registered in the console's source.
type consoleRoute struct {
	method, path string
	need         string // the role given to signedIn; "public" when not wrapped
	pos          string
}

func (r consoleRoute) pattern() string { return r.method + " " + r.path }

var consolePatternRE = regexp.MustCompile(`^(?:(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) )?(/\S*)$`)

// discoverConsoleRoutes parses web/*.go (not tests) and returns every
// pattern literal given to a mux's Handle or HandleFunc, with the role of
// the signedIn wrapper around its handler. A Handle or HandleFunc with a
// pattern that is not a literal fails the test. Combine is skipped: it mounts
// the API (covered by api/authz_test.go) and the console's own handler.
func discoverConsoleRoutes(t *testing.T) []consoleRoute {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var routes []consoleRoute
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Name.Name == "Combine" {
				continue // Combine mounts the API and the console, not routes
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) < 2 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: %s with a pattern that is not a string literal; the authorization test cannot see it",
						fset.Position(call.Pos()), sel.Sel.Name)
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				m := consolePatternRE.FindStringSubmatch(s)
				if m == nil {
					t.Errorf("%s: pattern %q not understood by the authorization test", fset.Position(lit.Pos()), s)
					return true
				}
				r := consoleRoute{method: m[1], path: m[2], need: "public", pos: fset.Position(lit.Pos()).String()}
				if r.method == "" {
					r.method = "ANY"
				}
				if c, ok := call.Args[1].(*ast.CallExpr); ok {
					if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "signedIn" && len(c.Args) > 0 {
						r.need = "?"
						if role, ok := c.Args[0].(*ast.SelectorExpr); ok {
							r.need = map[string]string{"UserViewer": "viewer", "UserEditor": "editor", "UserAdmin": "admin"}[role.Sel.Name]
						}
					}
				}
				routes = append(routes, r)
				return true
			})
		}
	}
	return routes
}

// consoleSamplePath fills a pattern's wildcards with the seed's ids.
func consoleSamplePath(p, contactID string) string {
	switch {
	case p == "/":
		return "/authz-no-such-page"
	case p == "/static/":
		return "/static/style.css"
	}
	p = strings.ReplaceAll(p, "{$}", "")
	p = strings.ReplaceAll(p, "{version}", "1")
	p = strings.ReplaceAll(p, "{step}", "text")
	if strings.HasPrefix(p, "/contacts/") {
		p = strings.ReplaceAll(p, "{id}", contactID)
	}
	return strings.ReplaceAll(p, "{id}", journeyID)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleClient is one browser: a cookie jar that follows no redirects.
type consoleClient struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string // the session's CSRF token, once signed in
}

func newConsoleClient(t testing.TB, base string) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *consoleClient) do(method, path string, form url.Values) (int, http.Header, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// loginToken reads the sign-in form's CSRF token (its cookie is in the jar).
func (c *consoleClient) loginToken() string {
	c.t.Helper()
	status, _, body := c.do("GET", "/login", nil)
	m := csrfFieldRE.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		c.t.Fatalf("GET /login: %d, no csrf field in:\n%s", status, body)
	}
	return m[1]
}

func (c *consoleClient) signIn(email string) {
	c.t.Helper()
	status, h, body := c.do("POST", "/login", url.Values{"email": {email}, "password": {"correct horse"}, "csrf": {c.loginToken()}})
	if status != http.StatusSeeOther || h.Get("Location") != "/" {
		c.t.Fatalf("signing in as %s: %d (Location %q)\n%s", email, status, h.Get("Location"), body)
	}
	status, _, body = c.do("GET", "/", nil)
	m := csrfFieldRE.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		c.t.Fatalf("overview as %s: %d, no csrf field in:\n%s", email, status, body)
	}
	c.csrf = m[1]
}

// TestConsoleAuthorization calls every console route signed out and as a
// viewer, an editor and an admin, and checks each answer against
// consoleExpect; and every POST route without the CSRF token, for each role.
func TestConsoleAuthorization(t *testing.T) {
	routes := discoverConsoleRoutes(t)
	if len(routes) < len(consoleExpect)/2 {
		t.Fatalf("found only %d routes in the sources; is the test run from web/?", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		p := r.pattern()
		if seen[p] {
			t.Errorf("%s: %s registered twice", r.pos, p)
		}
		seen[p] = true
		want, ok := consoleExpect[p]
		if !ok {
			t.Errorf("%s: route %q has no entry in consoleExpect (web/authz_test.go): add it with the role it needs", r.pos, p)
			continue
		}
		// The table must agree with the registration, so that it cannot
		// silently follow a wrong one.
		if r.need != want {
			t.Errorf("%s: %s is registered with role %q (signedIn) but consoleExpect says %q", r.pos, p, r.need, want)
		}
	}
	for p := range consoleExpect {
		if !seen[p] {
			t.Errorf("consoleExpect lists %q, which no source registers any more: remove it", p)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// POST /logout ends the session: call it last.
	slices.SortFunc(routes, func(a, b consoleRoute) int {
		al, bl := a.pattern() == "POST /logout", b.pattern() == "POST /logout"
		switch {
		case al && !bl:
			return 1
		case bl && !al:
			return -1
		}
		return strings.Compare(a.pattern(), b.pattern())
	})

	// The seed: the webinar journey published, one contact, a user per role.
	ctx := context.Background()
	db := nudgetest.SQLite(t)
	clock := nudgetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	src, err := os.ReadFile(filepath.Join("..", "examples", "webinar", "journey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journey.Parse("journey.yaml", src, journey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != journeyID {
		t.Fatalf("the example journey is %q, want %q", j.ID, journeyID)
	}
	if _, _, err := db.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: j.ID, Name: j.Name, Source: src, Hash: j.Hash()}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	const contactID = "authz-contact"
	if _, _, err := db.ContactPut(ctx, &nudge.Contact{ID: contactID, Email: "authz@example.com", Attributes: map[string]any{}}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	roles := []string{nudge.UserViewer, nudge.UserEditor, nudge.UserAdmin}
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range roles {
		if err := db.UserCreate(ctx, &nudge.User{ID: "u-" + role, Email: role + "@example.com", Role: role, PasswordHash: hash, CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := web.New(web.Config{Store: db, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)

	type who struct {
		name string // "signed-out" or a role
		c    *consoleClient
	}
	whos := []who{{"signed-out", newConsoleClient(t, srv.URL)}}
	for _, role := range roles {
		c := newConsoleClient(t, srv.URL)
		c.signIn(role + "@example.com")
		whos = append(whos, who{role, c})
	}
	rank := map[string]int{"public": 0, nudge.UserViewer: 1, nudge.UserEditor: 2, nudge.UserAdmin: 3}

	// Without the CSRF token, every POST is refused, whoever asks (and
	// before the session is ended by POST /logout).
	for _, r := range routes {
		if r.method != "POST" && r.method != "ANY" {
			continue
		}
		path := consoleSamplePath(r.path, contactID)
		for _, wh := range whos {
			if wh.name == "signed-out" && r.pattern() != "POST /login" {
				continue // refused for want of a session, checked below
			}
			form := url.Values{}
			if r.pattern() == "POST /login" {
				form = url.Values{"email": {"nobody@example.com"}, "password": {"wrong"}}
			}
			if got, _, body := wh.c.do("POST", path, form); got != http.StatusForbidden {
				t.Errorf("%s %s as %s without the CSRF token: %d, want 403\n%s", r.pattern(), path, wh.name, got, snippet(body))
			}
		}
	}
	if j, err := db.JourneyGet(ctx, journeyID); err != nil || j.Status != nudge.JourneyActive {
		t.Fatalf("after POSTs without a CSRF token the journey is %v (%v), want active", j, err)
	}

	for _, r := range routes {
		need := consoleExpect[r.pattern()]
		path := consoleSamplePath(r.path, contactID)
		methods := []string{r.method}
		if r.method == "ANY" {
			methods = []string{"GET", "POST"}
		}
		for _, method := range methods {
			what := method + " " + path + " (" + r.pattern() + ")"
			statuses := map[string]int{}
			for _, wh := range whos {
				var form url.Values
				if method == "POST" {
					form = url.Values{}
					switch {
					case r.pattern() == "POST /login":
						// A fresh sign-in form, wrong credentials: the route
						// answers 401 whoever asks, and no session changes.
						form = url.Values{"email": {"nobody@example.com"}, "password": {"wrong"}, "csrf": {wh.c.loginToken()}}
					case wh.c.csrf != "":
						form.Set("csrf", wh.c.csrf)
					}
				}
				got, h, body := wh.c.do(method, path, form)
				statuses[wh.name] = got
				as := what + " as " + wh.name
				switch {
				case need == "public":
					if got == http.StatusForbidden || got >= 500 {
						t.Errorf("%s: %d, want an answer that needs no session\n%s", as, got, snippet(body))
					}
					if r.pattern() == "POST /login" && got != http.StatusUnauthorized {
						t.Errorf("%s with wrong credentials: %d, want 401\n%s", as, got, snippet(body))
					}
				case wh.name == "signed-out" && method == "GET":
					if loc := h.Get("Location"); got != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
						t.Errorf("%s: %d (Location %q), want 303 to /login\n%s", as, got, loc, snippet(body))
					}
				case wh.name == "signed-out":
					if got != http.StatusUnauthorized && got != http.StatusForbidden {
						t.Errorf("%s: %d, want 401 or 403\n%s", as, got, snippet(body))
					}
				case rank[wh.name] < rank[need]:
					if got != http.StatusForbidden {
						t.Errorf("%s: %d, want 403 (the route needs %s)\n%s", as, got, need, snippet(body))
					}
				default:
					if got == http.StatusUnauthorized || got == http.StatusForbidden || got >= 500 {
						t.Errorf("%s: %d, want the handler's answer (not 401, 403 or 5xx)\n%s", as, got, snippet(body))
					}
				}
			}
			if need == "public" {
				for n, s := range statuses {
					if s != statuses["signed-out"] {
						t.Errorf("%s: %d as %s but %d signed out; a public route ignores the session", what, s, n, statuses["signed-out"])
					}
				}
			}
		}
	}

	// POST /logout really ended each session.
	for _, wh := range whos[1:] {
		if got, h, _ := wh.c.do("GET", "/", nil); got != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
			t.Errorf("GET / as %s after signing out: %d (Location %q), want 303 to /login", wh.name, got, h.Get("Location"))
		}
	}
}

func snippet(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
