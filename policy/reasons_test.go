package policy

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// reasonConsts reads the string constants named Reason… in a Go file.
func reasonConsts(t *testing.T, file string) []string {
	t.Helper()
	f, err := goparser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				codes = append(codes, s)
			}
		}
		return true
	})
	return codes
}

// TestReasonsDocumented keeps docs/reasons.md complete: it lists every
// reason code of the engine and the policy, and no other.
func TestReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if slices.Contains(documented, m[1]) {
			t.Errorf("docs/reasons.md lists %s twice", m[1])
		}
		documented = append(documented, m[1])
	}
	policyCodes := reasonConsts(t, "reason.go")
	if !slices.Equal(policyCodes, Reasons) {
		t.Errorf("Reasons %v differs from the constants %v", Reasons, policyCodes)
	}
	code := append(reasonConsts(t, "../engine/reason.go"), policyCodes...)
	code = append(code, CapReasonPatterns...)
	if len(code) < 40 {
		t.Fatalf("only %d codes found in the source", len(code))
	}
	for _, c := range code {
		if !slices.Contains(documented, c) {
			t.Errorf("reason %q is not in docs/reasons.md", c)
		}
	}
	for _, c := range documented {
		if !slices.Contains(code, c) {
			t.Errorf("docs/reasons.md lists %q, which no code writes", c)
		}
	}
	// Every cap code the policy can make matches a documented pattern.
	pattern := regexp.MustCompile(`^cap_(journey_)?(sms|email)_([0-9]+[wdhms])+$|^cap_(journey_)?(sms|email)_cal[0-9]+d$`)
	caps := Default().Caps
	caps = append(caps, Cap{Channel: nudge.ChannelEmail, Limit: 1, Days: 1}, Cap{Channel: nudge.ChannelSMS, Limit: 1, Per: 90 * time.Minute, Scope: ScopeJourney})
	for _, c := range caps {
		if !pattern.MatchString(c.Reason()) {
			t.Errorf("cap code %q matches no documented pattern", c.Reason())
		}
	}
}
