package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

// Who may call each route. A route registered in api/*.go that is missing
// here fails TestAuthorization, naming it: add it with the role it needs.
//
//	ingest, read, admin: an API key of that role (or admin) is required;
//	  no key or a bad one is 401, a key of another role 403.
//	twilio, kannel, sendgrid, ses: a provider webhook with its own credential; an
//	  API key is neither needed nor enough: 404 when the provider is not
//	  configured, 403 without its signature or key when it is.
//	public: no credential at all; the answer does not depend on the key.
var expect = map[string]string{
	"GET /healthz": "public",
	"GET /readyz":  "public",
	"GET /metrics": "public",

	"GET /c/{code}":   "public",
	"GET /u/{token}":  "public",
	"POST /u/{token}": "public",

	"POST /v1/identify": "ingest",
	"POST /v1/track":    "ingest",
	"POST /v1/page":     "ingest",
	"POST /v1/screen":   "ingest",
	"POST /v1/batch":    "ingest",

	"GET /v1/contacts":                            "read",
	"GET /v1/contacts/{id}":                       "read",
	"PUT /v1/contacts/{id}":                       "admin",
	"PATCH /v1/contacts/{id}":                     "admin",
	"DELETE /v1/contacts/{id}":                    "admin",
	"GET /v1/contacts/{id}/events":                "read",
	"GET /v1/contacts/{id}/consent":               "read",
	"POST /v1/contacts/{id}/consent":              "admin",
	"GET /v1/contacts/{id}/timeline":              "read",
	"GET /v1/consent/ledger.csv":                  "read",
	"POST /v1/contacts/import":                    "admin",
	"POST /v1/apikeys":                            "admin",
	"GET /v1/apikeys":                             "admin",
	"DELETE /v1/apikeys/{id}":                     "admin",
	"POST /v1/webhooks":                           "admin",
	"GET /v1/webhooks":                            "admin",
	"DELETE /v1/webhooks/{id}":                    "admin",
	"GET /v1/webhooks/{id}/deliveries":            "admin",
	"GET /v1/journeys":                            "read",
	"GET /v1/journeys/{id}":                       "read",
	"GET /v1/journeys/{id}/versions/{v}":          "read",
	"POST /v1/journeys/validate":                  "read",
	"POST /v1/journeys":                           "admin",
	"POST /v1/journeys/{id}/pause":                "admin",
	"POST /v1/journeys/{id}/resume":               "admin",
	"POST /v1/journeys/{id}/archive":              "admin",
	"GET /v1/journeys/{id}/pauses":                "read",
	"POST /v1/journeys/{id}/steps/{step}/resume":  "admin",
	"GET /v1/policy":                              "read",
	"PUT /v1/policy":                              "admin",
	"POST /v1/policy/validate":                    "read",
	"GET /v1/policy/versions":                     "read",
	"GET /v1/suppressions":                        "read",
	"POST /v1/suppressions":                       "admin",
	"DELETE /v1/suppressions/{channel}/{address}": "admin",
	"GET /v1/reports/journeys/{id}":               "read",
	"GET /v1/reports/overview":                    "read",
	"GET /v1/contacts/{id}/stages":                "read",
	"POST /v1/templates/{name}/preview":           "read",
	"POST /v1/webhooks/email":                     "ingest",

	"POST /v1/webhooks/twilio/status":  "twilio",
	"POST /v1/webhooks/twilio/inbound": "twilio",
	"GET /v1/webhooks/kannel/dlr":      "kannel",
	"GET /v1/webhooks/kannel/inbound":  "kannel",
	"POST /v1/webhooks/sendgrid":       "sendgrid",
	"POST /v1/webhooks/ses":            "ses",
}

// route is a pattern registered in the package's source.
type route struct {
	method, path string
	via          string // the function it was registered through
	pos          string
}

func (r route) pattern() string { return r.method + " " + r.path }

var patternRE = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/\S*)$`)

// discoverRoutes parses the package's non-test sources and returns every
// "METHOD /path" string literal passed as the first argument of a call: the
// mux's HandleFunc and Handle, and the read, admin and ingestRole wrappers
// alike. It fails the test on a Handle or HandleFunc call whose pattern is
// not a literal, which it could not check.
func discoverRoutes(t *testing.T) []route {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var routes []route
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		// A wrapper (read, admin, ingestRole) hands its own parameter to
		// HandleFunc: its callers' literals are the routes.
		forwards := map[token.Pos]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			var typ *ast.FuncType
			var body *ast.BlockStmt
			switch fn := n.(type) {
			case *ast.FuncLit:
				typ, body = fn.Type, fn.Body
			case *ast.FuncDecl:
				typ, body = fn.Type, fn.Body
			default:
				return true
			}
			params := map[string]bool{}
			for _, fld := range typ.Params.List {
				for _, id := range fld.Names {
					params[id.Name] = true
				}
			}
			if body == nil {
				return true
			}
			ast.Inspect(body, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && len(call.Args) > 0 {
					if id, ok := call.Args[0].(*ast.Ident); ok && params[id.Name] {
						forwards[call.Pos()] = true
					}
				}
				return true
			})
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			via := exprString(call.Fun)
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				if (strings.HasSuffix(via, ".HandleFunc") || strings.HasSuffix(via, ".Handle")) && !forwards[call.Pos()] {
					t.Errorf("%s: %s with a pattern that is not a string literal; the authorization test cannot see it",
						fset.Position(call.Pos()), via)
				}
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := patternRE.FindStringSubmatch(s); m != nil {
				routes = append(routes, route{method: m[1], path: m[2], via: via, pos: fset.Position(lit.Pos()).String()})
			}
			return true
		})
	}
	return routes
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "?"
}

// samplePath fills a pattern's wildcards with values no record has.
func samplePath(p string) string {
	return regexp.MustCompile(`\{[^}]*\}`).ReplaceAllStringFunc(p, func(w string) string {
		switch strings.Trim(w, "{}.") {
		case "channel":
			return "sms"
		case "v":
			return "1"
		}
		return "authz-nope"
	})
}

// TestAuthorization calls every route with no key, a bad key, a revoked key
// and a key of each role, with the provider webhooks unconfigured and then
// configured, and checks each answer against expect.
func TestAuthorization(t *testing.T) {
	routes := discoverRoutes(t)
	if len(routes) < len(expect)/2 {
		t.Fatalf("found only %d routes in the sources; is the test run from api/?", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		p := r.pattern()
		if seen[p] {
			t.Errorf("%s: %s registered twice", r.pos, p)
		}
		seen[p] = true
		if _, ok := expect[p]; !ok {
			t.Errorf("%s: route %q (registered through %s) has no entry in expect (api/authz_test.go): add it with the role it needs",
				r.pos, p, r.via)
		}
	}
	for p := range expect {
		if !seen[p] {
			t.Errorf("expect lists %q, which no source registers any more: remove it", p)
		}
	}
	// The wrapper a route is registered through must say what the table says,
	// so that the table cannot silently follow a wrong registration.
	wrapperRole := map[string]string{"read": "read", "admin": "admin", "ingestRole": "ingest"}
	for _, r := range routes {
		want, ok := expect[r.pattern()]
		if !ok {
			continue
		}
		if role, isWrapper := wrapperRole[r.via]; isWrapper && role != want {
			t.Errorf("%s: %s is registered through %s (role %s) but expect says %s", r.pos, r.pattern(), r.via, role, want)
		}
		if !isWrapperName(r.via, wrapperRole) && strings.HasPrefix(r.path, "/v1/") && !slices.Contains([]string{"twilio", "kannel", "sendgrid", "ses"}, want) {
			t.Errorf("%s: %s is registered on the mux without requireRole, yet it is under /v1 and not a provider webhook", r.pos, r.pattern())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	slices.SortFunc(routes, func(a, b route) int { return strings.Compare(a.pattern(), b.pattern()) })

	for _, providers := range []bool{false, true} {
		name := "providers-unconfigured"
		if providers {
			name = "providers-configured"
		}
		t.Run(name, func(t *testing.T) {
			var opts []func(*api.Config)
			if providers {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, func(c *api.Config) {
					c.TwilioAuthToken = "authz-twilio-token"
					c.KannelKey = "authz-kannel-key-0123456789abcdef"
					c.SendGridPublicKey = base64.StdEncoding.EncodeToString(der)
					c.SESTopicARNs = []string{"arn:aws:sns:us-east-1:123456789012:nudge-ses"}
				})
			}
			e := newEnvWith(t, nudgetest.SQLite(t), opts...)
			revokedKey, revoked := nudge.NewAPIKey(nudge.RoleAdmin, "revoked", e.clock.Now())
			if err := e.store.APIKeyCreate(t.Context(), revokedKey); err != nil {
				t.Fatal(err)
			}
			if r := e.do("DELETE", "/v1/apikeys/"+revokedKey.ID, e.admin, nil); r.status/100 != 2 {
				t.Fatalf("revoking a key: %d %s", r.status, r.body)
			}
			creds := []struct {
				name, token, role string // role "" : no valid key
			}{
				{"no-key", "", ""},
				{"bad-key", "nk_bogus_0123456789", ""},
				{"revoked-key", revoked, ""},
				{"ingest-key", e.ingest, nudge.RoleIngest},
				{"read-key", e.read, nudge.RoleRead},
				{"admin-key", e.admin, nudge.RoleAdmin},
			}
			for _, rt := range routes {
				class := expect[rt.pattern()]
				path := samplePath(rt.path)
				statuses := map[string]int{}
				for _, c := range creds {
					var body any
					if rt.method == "POST" || rt.method == "PUT" || rt.method == "PATCH" {
						body = "{}"
					}
					got := e.do(rt.method, path, c.token, body).status
					statuses[c.name] = got
					what := rt.pattern() + " with " + c.name
					switch class {
					case "ingest", "read", "admin":
						k := &nudge.APIKey{Role: c.role}
						switch {
						case c.role == "":
							if got != http.StatusUnauthorized {
								t.Errorf("%s: %d, want 401", what, got)
							}
						case !k.Allows(class):
							if got != http.StatusForbidden {
								t.Errorf("%s: %d, want 403 (the route needs %s)", what, got, class)
							}
						default:
							if got == http.StatusUnauthorized || got == http.StatusForbidden || got >= 500 {
								t.Errorf("%s: %d, want the handler's answer (not 401, 403 or 5xx)", what, got)
							}
						}
					case "twilio", "kannel", "sendgrid", "ses":
						want := http.StatusNotFound
						if providers {
							want = http.StatusForbidden
						}
						if got != want {
							t.Errorf("%s: %d, want %d (an API key neither opens nor closes a provider webhook)", what, got, want)
						}
					case "public":
						if got == http.StatusUnauthorized || got == http.StatusForbidden || got >= 500 {
							t.Errorf("%s: %d, want an answer that needs no credential", what, got)
						}
					default:
						t.Fatalf("expect[%q] = %q: not a known class", rt.pattern(), class)
					}
				}
				if class == "public" {
					for n, s := range statuses {
						if s != statuses["no-key"] {
							t.Errorf("%s: %d with %s but %d with no key; a public route ignores API keys", rt.pattern(), s, n, statuses["no-key"])
						}
					}
				}
			}

			// The catch-all: nothing under /v1 answers without a key, not
			// even a 404 or 405 that would reveal which paths exist.
			for _, probe := range []struct{ method, path string }{
				{"GET", "/v1/no-such-route"},
				{"DELETE", "/v1/policy"},
				{"PATCH", "/v1/identify"},
			} {
				if got := e.do(probe.method, probe.path, "", nil).status; got != http.StatusUnauthorized {
					t.Errorf("%s %s with no key: %d, want 401", probe.method, probe.path, got)
				}
				got := e.do(probe.method, probe.path, e.ingest, nil).status
				if got != http.StatusNotFound && got != http.StatusMethodNotAllowed {
					t.Errorf("%s %s with a key: %d, want 404 or 405", probe.method, probe.path, got)
				}
			}
		})
	}
}

func isWrapperName(via string, wrappers map[string]string) bool {
	_, ok := wrappers[via]
	return ok
}
