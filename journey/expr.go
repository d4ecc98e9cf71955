package journey

import (
	"fmt"
	"reflect"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"github.com/nudge/nudge"
)

// CostLimit bounds the work one evaluation of an expression may do, in CEL
// cost units (about one per field access or comparison; a list
// comprehension costs per element). An expression that exceeds it fails with
// an error.
const CostLimit = 100_000

// Vars are the values an expression is evaluated against. A nil Contact or
// Event is absent: an expression that reads it fails with an error.
type Vars struct {
	Contact *nudge.Contact
	Event   *nudge.Event
	Journey JourneyVars
}

// JourneyVars is the enrollment data expressions see as journey.
type JourneyVars struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	Key       string    `json:"key"`
	EnteredAt time.Time `json:"entered_at"`
	// Steps holds, per id of a step the enrollment already went through, the
	// id of the message it sent (if any) and when it ran:
	// journey.steps["confirm"].message_id.
	Steps map[string]StepVars `json:"steps"`
}

// StepVars is what journey.steps[ID] holds.
type StepVars struct {
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
}

// Expr is a compiled CEL expression of a journey file. Its type was checked
// when the journey was parsed (bool for conditions, string for the key,
// timestamp for wait until).
type Expr struct {
	Source string
	// Line and Col locate the expression in the journey file.
	Line, Col int
	prog      cel.Program
}

func (e *Expr) String() string { return e.Source }

// Eval evaluates the expression. The result is a Go value: bool, string,
// int64, uint64, float64, time.Time, time.Duration, []byte, nil, or for lists
// and maps the CEL runtime's value. An error (a missing key, a wrong dynamic
// type, the cost limit) is returned as an error.
func (e *Expr) Eval(v Vars) (any, error) {
	act := map[string]any{"journey": &v.Journey}
	if v.Contact != nil {
		act["contact"] = v.Contact
	}
	if v.Event != nil {
		act["event"] = v.Event
	}
	out, _, err := e.prog.Eval(act)
	if err != nil {
		return nil, fmt.Errorf("%s (%d:%d): %w", e.Source, e.Line, e.Col, err)
	}
	if types.IsUnknownOrError(out) {
		return nil, fmt.Errorf("%s (%d:%d): %v", e.Source, e.Line, e.Col, out)
	}
	return out.Value(), nil
}

// EvalBool evaluates a condition. A result that is not a bool (possible only
// through dynamic attributes) is an error.
func (e *Expr) EvalBool(v Vars) (bool, error) {
	out, err := e.Eval(v)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("%s (%d:%d): got %T, want bool", e.Source, e.Line, e.Col, out)
	}
	return b, nil
}

// EvalString evaluates a string expression, such as a journey's key.
func (e *Expr) EvalString(v Vars) (string, error) {
	out, err := e.Eval(v)
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("%s (%d:%d): got %T, want string", e.Source, e.Line, e.Col, out)
	}
	return s, nil
}

// EvalTime evaluates a timestamp expression, such as a wait's until.
func (e *Expr) EvalTime(v Vars) (time.Time, error) {
	out, err := e.Eval(v)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := out.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("%s (%d:%d): got %T, want timestamp", e.Source, e.Line, e.Col, out)
	}
	return t, nil
}

// celEnv is built once: it holds no state but declarations.
var celEnv, celEnvErr = newEnv()

func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(
			reflect.TypeFor[nudge.Contact](),
			reflect.TypeFor[nudge.Event](),
			reflect.TypeFor[JourneyVars](),
			ext.ParseStructTag("json"),
		),
		cel.Variable("contact", cel.ObjectType("nudge.Contact")),
		cel.Variable("event", cel.ObjectType("nudge.Event")),
		cel.Variable("journey", cel.ObjectType("journey.JourneyVars")),
		ext.Strings(),
		cel.OptionalTypes(),
	)
}

// celIssue is one compile problem, at a 1-based line and 0-based column of
// the expression's text.
type celIssue struct {
	line, col int
	msg       string
	syntax    bool
}

// compile compiles and type-checks src. When it has no issue, it returns the
// program and the expression's type.
func compile(src string) (cel.Program, *cel.Type, []celIssue) {
	if celEnvErr != nil {
		return nil, nil, []celIssue{{1, 0, "internal error: " + celEnvErr.Error(), false}}
	}
	parsed, iss := celEnv.Parse(src)
	if iss.Err() != nil {
		return nil, nil, issues(iss, true)
	}
	ast, iss := celEnv.Check(parsed)
	if iss.Err() != nil {
		return nil, nil, issues(iss, false)
	}
	prog, err := celEnv.Program(ast, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, nil, []celIssue{{1, 0, err.Error(), false}}
	}
	return prog, ast.OutputType(), nil
}

func issues(iss *cel.Issues, syntax bool) []celIssue {
	var out []celIssue
	for _, e := range iss.Errors() {
		out = append(out, celIssue{max(e.Location.Line(), 1), max(e.Location.Column(), 0), e.Message, syntax})
	}
	return out
}

// typeFits reports whether an expression of type got may stand where want is
// expected. Dyn fits anything: it is checked when evaluated.
func typeFits(got, want *cel.Type) bool {
	return got.IsExactType(types.DynType) || got.IsAssignableType(want)
}

func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(types.TimestampType):
		return "timestamp"
	case t.IsExactType(types.DurationType):
		return "duration"
	}
	return t.String()
}
