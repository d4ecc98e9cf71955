package api_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/policy"
)

const testPolicy = `timezone: America/Chicago
sms:
  purposes: [reminder, decision_point]
caps:
  - {channel: sms, limit: 1, per: 24h}
`

// The default written as a file is the default.
func TestDefaultPolicyYAML(t *testing.T) {
	p, err := policy.Parse("default.yaml", []byte(api.DefaultPolicyYAML))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(policy.Default(), p, cmpopts.IgnoreUnexported(policy.Cap{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("DefaultPolicyYAML is not policy.Default() (-want +got):\n%s", diff)
	}
}

// The example workspace policy parses, and says something.
func TestExamplePolicy(t *testing.T) {
	src, err := os.ReadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("examples/policy.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Timezone == policy.Default().Timezone && len(p.Priorities) == 0 {
		t.Errorf("the example changes nothing: %+v", p)
	}
}

func TestPolicy(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newEnv(t, open)

		// Nothing published: the built-in default, said so.
		r := e.must(e.do("GET", "/v1/policy", e.read, nil), 200)
		if r.header.Get("Nudge-Policy-Default") != "true" || r.header.Get("Nudge-Policy-Version") != "0" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") || string(r.body) != api.DefaultPolicyYAML {
			t.Fatalf("default: %v\n%s", r.header, r.body)
		}
		r = e.must(e.do("GET", "/v1/policy?format=json", e.read, nil), 200)
		if r.json["default"] != true || r.json["version"].(float64) != 0 || r.json["source"] != api.DefaultPolicyYAML || r.json["hash"] == "" {
			t.Fatalf("default JSON: %s", r.body)
		}
		r = e.must(e.do("GET", "/v1/policy/versions", e.read, nil), 200)
		if vs := r.json["versions"].([]any); len(vs) != 0 {
			t.Fatalf("versions: %s", r.body)
		}

		// Validate stores nothing; read keys may.
		r = e.must(e.do("POST", "/v1/policy/validate", e.read, testPolicy), 200)
		if r.json["valid"] != true || len(r.json["problems"].([]any)) != 0 {
			t.Fatalf("validate: %s", r.body)
		}
		bad := strings.Replace(testPolicy, "America/Chicago", "America/Chicgo", 1)
		bad = strings.Replace(bad, "per: 24h", "per: one day", 1) + "quiet_hour: {}\n"
		r = e.must(e.do("POST", "/v1/policy/validate", e.read, bad), 200)
		problems := r.json["problems"].([]any)
		if r.json["valid"] != false || len(problems) != 3 {
			t.Fatalf("validate bad: %s", r.body)
		}
		for _, p := range problems {
			p := p.(map[string]any)
			if p["line"].(float64) < 1 || p["col"].(float64) < 1 || p["message"] == "" {
				t.Errorf("problem without position: %v", p)
			}
		}
		if l := problems[0].(map[string]any)["line"].(float64); l != 1 {
			t.Errorf("first problem at line %v, want 1 (timezone)", l)
		}

		// PUT: admin only; an invalid policy is never stored.
		e.must(e.do("PUT", "/v1/policy", e.read, testPolicy), 403)
		r = e.must(e.do("PUT", "/v1/policy", e.admin, bad), 400)
		if r.errField("code") != "invalid" || len(r.json["problems"].([]any)) != 3 {
			t.Fatalf("put bad: %s", r.body)
		}
		e.must(e.do("PUT", "/v1/policy", e.admin, ""), 400)
		r = e.must(e.do("GET", "/v1/policy/versions", e.read, nil), 200)
		if vs := r.json["versions"].([]any); len(vs) != 0 {
			t.Fatalf("a bad policy was stored: %s", r.body)
		}

		// Publish, publish the same, publish a change.
		r = e.must(e.do("PUT", "/v1/policy", e.admin, testPolicy), 201)
		if v := r.json["version"].(map[string]any); v["version"].(float64) != 1 || r.json["created"] != true || v["hash"] == "" {
			t.Fatalf("put: %s", r.body)
		}
		r = e.must(e.do("PUT", "/v1/policy", e.admin, testPolicy), 200)
		if r.json["created"] != false {
			t.Fatalf("put again: %s", r.body)
		}
		v2 := testPolicy + "on_cap: defer\n"
		r = e.must(e.do("PUT", "/v1/policy", e.admin, v2), 201)
		if v := r.json["version"].(map[string]any); v["version"].(float64) != 2 {
			t.Fatalf("put v2: %s", r.body)
		}

		r = e.must(e.do("GET", "/v1/policy", e.read, nil), 200)
		if string(r.body) != v2 || r.header.Get("Nudge-Policy-Version") != "2" || r.header.Get("Nudge-Policy-Default") != "" || r.header.Get("Nudge-Policy-Hash") == "" {
			t.Fatalf("latest: %v\n%s", r.header, r.body)
		}
		r = e.must(e.do("GET", "/v1/policy?version=1&format=json", e.read, nil), 200)
		if r.json["source"] != testPolicy || r.json["version"].(float64) != 1 || r.json["default"] != false {
			t.Fatalf("v1 JSON: %s", r.body)
		}
		e.must(e.do("GET", "/v1/policy?version=9", e.read, nil), 404)
		for _, q := range []string{"?version=0", "?version=x", "?format=xml", "?verison=1"} {
			e.must(e.do("GET", "/v1/policy"+q, e.read, nil), 400)
		}
		r = e.must(e.do("GET", "/v1/policy/versions", e.read, nil), 200)
		vs := r.json["versions"].([]any)
		if len(vs) != 2 || vs[0].(map[string]any)["version"].(float64) != 1 || vs[0].(map[string]any)["source"] != nil {
			t.Fatalf("versions: %s", r.body)
		}
	})
}
