package journey

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	yamlparser "github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/nudge/nudge/internal/yamlnode"
)

// Options configures Parse.
type Options struct {
	// Templates reports whether a template of the channel ("email", "sms")
	// and name exists. Nil: templates are not checked.
	Templates func(channel, name string) bool
}

// Parse parses and validates one journey file. file names it in problems;
// src is its content. When anything is wrong it returns a *ValidationError
// holding every problem found, each with a line and column, and no journey.
func Parse(file string, src []byte, opt Options) (*Journey, error) {
	p := &parser{file: file, src: bytes.Clone(src), lines: strings.Split(string(src), "\n"), opt: opt}
	j := p.parse()
	if len(p.problems) > 0 {
		slices.SortStableFunc(p.problems, func(a, b Problem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, &ValidationError{Problems: p.problems}
	}
	return j, nil
}

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	stepIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	envPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	clockPattern  = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):([0-5][0-9])$`)
)

// The fields each mapping may have, in the order the documentation gives them.
var (
	journeyFields  = []string{"id", "name", "description", "trigger", "entry", "key", "reentry", "holdout", "priority", "policy", "goal", "exit", "steps"}
	triggerFields  = []string{"event", "filter", "attribute", "date"}
	dateFields     = []string{"field", "offset", "at"}
	reentryFields  = []string{"after"}
	goalFields     = []string{"event", "match", "condition", "within"}
	stepFields     = []string{"id", "next", "email", "sms", "wait", "wait_for", "branch", "split", "update_contact", "webhook", "exit", "expires", "deadline", "on_cap", "policy"}
	emailFields    = []string{"template"}
	smsFields      = []string{"template", "purpose"}
	waitFields     = []string{"for", "until", "until_local", "weekdays"}
	waitForFields  = []string{"event", "match", "timeout", "on_event", "on_timeout"}
	caseFields     = []string{"if", "then", "else"}
	splitFields    = []string{"weight", "next"}
	updateFields   = []string{"set"}
	webhookFields  = []string{"url", "secret_env"}
	weekdayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	contactSetKeys = []string{"lifecycle_stage", "journey_stage", "is_customer"}
)

var (
	boolType      = cel.BoolType
	stringType    = cel.StringType
	timestampType = cel.TimestampType
)

type parser struct {
	file     string
	src      []byte
	lines    []string
	opt      Options
	problems []Problem

	steps    []*Step
	byID     map[string]*Step
	refs     []stepRef
	defaults []defaultRef
}

// stepRef is a step id written in next, then, else, on_event, on_timeout or
// a split's next, resolved once every step is known.
type stepRef struct {
	where string // "next", "then", …
	node  ast.Node
	dst   *string
}

func (p *parser) errAt(line, col int, format string, args ...any) {
	p.problems = append(p.problems, Problem{File: p.file, Line: max(line, 1), Col: max(col, 1), Message: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(n ast.Node, format string, args ...any) {
	line, col := yamlnode.Pos(n)
	p.errAt(line, col, format, args...)
}

func (p *parser) parse() *Journey {
	f, err := yamlparser.ParseBytes(p.src, 0, yamlparser.AllowDuplicateMapKey())
	if err != nil {
		p.yamlError(err)
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		p.errAt(1, 1, "the file is empty; a journey starts with id: my-journey, a trigger and steps (see docs/journeys.md)")
		return nil
	}
	if len(docs) > 1 {
		p.errorf(docs[1].Body, "a second YAML document; a journey file holds one journey: move this one to its own file")
	}
	return p.journey(docs[0].Body)
}

func (p *parser) yamlError(err error) {
	var se *yaml.SyntaxError
	if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
		p.errAt(se.Token.Position.Line, se.Token.Position.Column, "YAML syntax error: %s", se.Message)
		return
	}
	p.errAt(1, 1, "YAML syntax error: %s", err)
}

// fields is a YAML mapping whose keys were checked against the allowed ones.
type fields struct {
	at ast.Node // where to report a missing field: the mapping's own key
	kv map[string]*ast.MappingValueNode
}

func (f *fields) has(key string) bool { return f.kv[key] != nil }

// get returns the value of key, or nil.
func (f *fields) get(key string) ast.Node {
	if mv := f.kv[key]; mv != nil {
		return yamlnode.Unwrap(mv.Value)
	}
	return nil
}

// key returns the key node of key, or nil.
func (f *fields) key(key string) ast.Node {
	if mv := f.kv[key]; mv != nil {
		return mv.Key
	}
	return nil
}

// mapping checks that n is a mapping with only allowed keys. what names it
// in messages ("trigger"); at is where a missing field is reported. A null
// value is an empty mapping. It returns nil when n is not a mapping.
func (p *parser) mapping(n ast.Node, at ast.Node, what string, allowed []string) *fields {
	n = yamlnode.Unwrap(n)
	f := &fields{at: at, kv: map[string]*ast.MappingValueNode{}}
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case nil, *ast.NullNode:
		return f
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	case *ast.AliasNode:
		p.errorf(n, "%s: YAML aliases (*name) are not supported in journey files; write the value out", what)
		return nil
	default:
		p.errorf(n, "%s must be a mapping of fields (%s), not %s", what, strings.Join(allowed, ", "), yamlnode.Describe(n))
		return nil
	}
	for _, mv := range pairs {
		if mv.Key.IsMergeKey() {
			p.errorf(mv.Key, "%s: YAML merge keys (<<) are not supported in journey files; write the fields out", what)
			continue
		}
		k := yamlnode.KeyString(mv.Key)
		if first := f.kv[k]; first != nil {
			line, _ := yamlnode.Pos(first.Key)
			p.errorf(mv.Key, "%s: field %q is given twice (first at line %d); keep one", what, k, line)
			continue
		}
		if len(allowed) == 0 {
			p.errorf(mv.Key, "unknown field %q in %s; %s takes no fields: write %s: {}", k, what, what, what)
			continue
		}
		if !slices.Contains(allowed, k) {
			p.errorf(mv.Key, "unknown field %q in %s; %s", k, what, yamlnode.Suggest(k, allowed, "the fields are"))
			continue
		}
		f.kv[k] = mv
	}
	return f
}

// scalar returns a scalar's text. Numbers and booleans are returned as
// written. ok is false (and a problem reported) for anything else.
func (p *parser) scalar(n ast.Node, what string) (string, bool) {
	switch m := yamlnode.Unwrap(n).(type) {
	case *ast.StringNode:
		return m.Value, true
	case *ast.LiteralNode:
		return m.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return m.GetToken().Value, true
	case *ast.NullNode:
		p.errorf(n, "%s is empty; write a value", what)
	default:
		p.errorf(n, "%s must be a single value, not %s", what, yamlnode.Describe(n))
	}
	return "", false
}

// str reads an optional text field; required reports its absence.
func (p *parser) str(f *fields, key, what string, required bool, hint string) (string, ast.Node) {
	n := f.get(key)
	if !f.has(key) {
		if required {
			p.errorf(f.at, "%s is missing; %s", what, hint)
		}
		return "", nil
	}
	s, ok := p.scalar(n, what)
	if !ok {
		return "", nil
	}
	if required && strings.TrimSpace(s) == "" {
		p.errorf(n, "%s is empty; %s", what, hint)
		return "", nil
	}
	return s, n
}

// duration reads a duration field.
func (p *parser) duration(n ast.Node, what string) (time.Duration, bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, true
	}
	switch yamlnode.Unwrap(n).(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		p.errorf(n, "%s: %s has no unit; write %sm, %sh or %sd", what, s, s, s, s)
		return 0, false
	}
	if fix := suggestDuration(s); fix != "" {
		p.errorf(n, "%s: bad duration %q; write %s", what, s, fix)
	} else {
		p.errorf(n, "%s: bad duration %q; write a number and a unit such as 30d, 1d12h, 90m or 2w", what, s)
	}
	return 0, false
}

// positiveDuration reads a duration that must be more than zero.
func (p *parser) positiveDuration(n ast.Node, what string) time.Duration {
	d, ok := p.duration(n, what)
	if ok && d <= 0 {
		p.errorf(n, "%s must be more than zero, such as 2d", what)
	}
	return d
}

func (p *parser) timeOfDay(n ast.Node, what string) *TimeOfDay {
	s, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	m := clockPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		p.errorf(n, "%s: bad time of day %q; write 24-hour HH:MM in quotes, such as \"09:00\" or \"17:30\"", what, s)
		return nil
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return &TimeOfDay{Hour: h, Minute: mi}
}

// expr compiles a CEL expression field and checks its type.
func (p *parser) expr(n ast.Node, what string, want *cel.Type) *Expr {
	src, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	if strings.TrimSpace(src) == "" {
		p.errorf(n, "%s is empty; write a CEL expression", what)
		return nil
	}
	line, col, multi := p.exprStart(n)
	e := &Expr{Source: src, Line: line, Col: col}
	prog, typ, issues := compile(src)
	for _, is := range issues {
		l, c := line, col+is.col
		if is.line > 1 {
			// Block scalars keep their lines; the block's indentation was
			// stripped from each, so add it back.
			l = line + is.line - 1
			if multi {
				c = col + is.col
			} else {
				c = 1 + is.col
			}
		}
		p.errAt(l, c, "%s: %s", what, celMessage(src, is))
	}
	if issues != nil {
		return nil
	}
	if !typeFits(typ, want) {
		p.errAt(line, col, "%s must be %s, but %s is %s; %s", what, article(want), quoteExpr(src), article(typ), typeHint(want))
		return nil
	}
	e.prog = prog
	return e
}

// exprStart is where the expression's first character is: after an opening
// quote, or on the line after a block scalar's | or >.
func (p *parser) exprStart(n ast.Node) (line, col int, block bool) {
	n = yamlnode.Unwrap(n)
	line, col = yamlnode.Pos(n)
	switch m := n.(type) {
	case *ast.StringNode:
		if t := m.GetToken(); t != nil && (t.Type == token.SingleQuoteType || t.Type == token.DoubleQuoteType) {
			col++
		}
	case *ast.LiteralNode:
		line++
		for line <= len(p.lines) && strings.TrimSpace(p.lines[line-1]) == "" {
			line++
		}
		return line, p.indent(line) + 1, true
	}
	return line, col, false
}

// indent is the number of leading spaces of a 1-based line.
func (p *parser) indent(line int) int {
	if line < 1 || line > len(p.lines) {
		return 0
	}
	s := p.lines[line-1]
	return len(s) - len(strings.TrimLeft(s, " "))
}

func quoteExpr(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return "`" + s + "`"
}

func article(t *cel.Type) string {
	switch typeName(t) {
	case "bool":
		return "a condition (bool)"
	case "string":
		return "a string"
	case "timestamp":
		return "a timestamp"
	case "int", "uint", "double":
		return "a number (" + typeName(t) + ")"
	}
	return "of type " + typeName(t)
}

func typeHint(want *cel.Type) string {
	switch typeName(want) {
	case "bool":
		return `compare it, such as event.properties.plan == "pro"`
	case "string":
		return `convert it with string(...), or pick a string field such as event.properties.webinar_id`
	case "timestamp":
		return `write a timestamp, such as timestamp(event.properties.starts_at) - duration("1h")`
	}
	return ""
}

var (
	contactFieldNames = "id, email, phone, timezone, lifecycle_stage, journey_stage, is_customer, attributes, created_at, updated_at"
	eventFieldNames   = "name, type, properties, timestamp, contact_id, message_id"
	journeyFieldNames = "id, version, key, entered_at, steps"
)

// celMessage makes a CEL issue readable, with what to write instead where
// the mistake is a common one.
func celMessage(src string, is celIssue) string {
	kind := "CEL type error"
	if is.syntax {
		kind = "CEL syntax error"
	}
	msg := strings.TrimPrefix(is.msg, "Syntax error: ")
	if strings.HasPrefix(msg, "undefined field") {
		switch identBefore(src, is.line, is.col) {
		case "contact":
			msg += "; contact has " + contactFieldNames + ": write contact.attributes.NAME for a CRM attribute"
		case "event":
			msg += "; event has " + eventFieldNames + ": write event.properties.NAME for an event property"
		case "journey":
			msg += "; journey has " + journeyFieldNames
		}
	}
	if strings.HasPrefix(msg, "undeclared reference") {
		msg += "; the variables are contact, event and journey"
	}
	if strings.HasPrefix(msg, "found no matching overload for '_==_'") || strings.HasPrefix(msg, "found no matching overload for '_!=_'") {
		msg += "; both sides of a comparison must have the same type (quote text, leave numbers bare)"
	}
	return kind + ": " + msg
}

// identBefore returns the identifier that ends just before the 0-based
// column col of line in src ("contact" in "contact.nosuch" at the dot).
func identBefore(src string, line, col int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	s := lines[line-1]
	if col > len(s) {
		return ""
	}
	s = s[:col]
	i := len(s)
	for i > 0 && (s[i-1] == '_' || s[i-1] >= 'a' && s[i-1] <= 'z' || s[i-1] >= 'A' && s[i-1] <= 'Z' || s[i-1] >= '0' && s[i-1] <= '9') {
		i--
	}
	return s[i:]
}

func (p *parser) journey(root ast.Node) *Journey {
	f := p.mapping(root, root, "the journey", journeyFields)
	if f == nil {
		return nil
	}
	j := &Journey{File: p.file, Source: p.src, Reentry: Reentry{Kind: ReentryNever}}
	if id, n := p.str(f, "id", "id", true, "write id: my-journey (lowercase letters, digits and dashes)"); n != nil {
		if !idPattern.MatchString(id) {
			p.errorf(n, "id %q: use lowercase letters, digits and dashes, such as %s", id, slug(id))
		}
		j.ID = id
	}
	j.Name, _ = p.str(f, "name", "name", false, "")
	if j.Name == "" {
		j.Name = j.ID
	}
	j.Description, _ = p.str(f, "description", "description", false, "")

	if !f.has("trigger") {
		p.errorf(f.at, "trigger is missing; write trigger: {event: NAME}, trigger: {attribute: CONDITION} or trigger: {date: {field: NAME, offset: -7d}}")
	} else {
		p.trigger(f, j)
	}
	if f.has("entry") {
		j.Entry = p.expr(f.get("entry"), "entry", boolType)
	}
	if f.has("key") {
		j.Key = p.expr(f.get("key"), "key", stringType)
	}
	if f.has("reentry") {
		j.Reentry = p.reentry(f.get("reentry"))
	}
	if f.has("holdout") {
		j.Holdout = p.holdout(f.get("holdout"))
	}
	if f.has("priority") {
		j.Priority = p.priority(f.get("priority"))
	}
	if f.has("policy") {
		j.Policy = p.override(f.get("policy"), f.key("policy"), "journey "+j.ID)
	}
	if f.has("goal") {
		j.Goal = p.goal(f)
	}
	if f.has("exit") {
		j.Exit = p.exitRules(f.get("exit"))
	}
	if !f.has("steps") {
		p.errorf(f.at, "steps is missing; a journey needs at least one step, such as steps: [{id: welcome, email: {template: welcome}}]")
	} else {
		p.stepList(f.get("steps"), f.key("steps"))
	}
	p.resolve()
	p.checkGraph()
	j.Steps = p.steps
	j.byID = p.byID
	for _, s := range j.Steps {
		s.journeyID = j.ID
	}
	return j
}

// slug suggests an id for s.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if out == "" {
		return "my-journey"
	}
	return out
}

func (p *parser) trigger(jf *fields, j *Journey) {
	f := p.mapping(jf.get("trigger"), jf.key("trigger"), "trigger", triggerFields)
	if f == nil {
		return
	}
	var kinds []string
	for _, k := range []string{"event", "attribute", "date"} {
		if f.has(k) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		p.errorf(f.at, "trigger needs one of event, attribute or date; write event: NAME to enter on an event")
		return
	case 1:
	default:
		p.errorf(f.key(kinds[1]), "trigger has both %s and %s; a journey has exactly one trigger: keep one and remove the other", kinds[0], kinds[1])
		return
	}
	if f.has("filter") && kinds[0] != "event" {
		p.errorf(f.key("filter"), "filter applies to event triggers only; for a %s trigger, put the condition in entry", kinds[0])
	}
	switch kinds[0] {
	case "event":
		j.Trigger.Kind = TriggerEvent
		j.Trigger.Event, _ = p.str(f, "event", "trigger event", true, "write the event name, such as webinar.registered")
		if f.has("filter") {
			j.Trigger.Filter = p.expr(f.get("filter"), "filter", boolType)
		}
	case "attribute":
		j.Trigger.Kind = TriggerAttribute
		j.Trigger.Condition = p.expr(f.get("attribute"), "attribute", boolType)
	case "date":
		j.Trigger.Kind = TriggerDate
		j.Trigger.Date = p.dateTrigger(f.get("date"), f.key("date"))
	}
}

func (p *parser) dateTrigger(n, at ast.Node) *DateTrigger {
	f := p.mapping(n, at, "date", dateFields)
	if f == nil {
		return nil
	}
	d := &DateTrigger{At: TimeOfDay{Hour: 9}}
	field, fn := p.str(f, "field", "date field", true, "write the contact date it counts from, such as field: renewal_date (an attribute) or field: created_at")
	if fn != nil {
		switch {
		case field == "created_at" || field == "updated_at":
			d.Field = field
		case strings.HasPrefix(field, "attributes.") && len(field) > len("attributes."):
			d.Field, d.Attribute = strings.TrimPrefix(field, "attributes."), true
		case strings.HasPrefix(field, "contact."):
			p.errorf(fn, "date field %q: write the field without contact., such as %s", field, strings.TrimPrefix(field, "contact."))
		case slices.Contains([]string{"id", "email", "phone", "timezone", "lifecycle_stage", "journey_stage", "is_customer"}, field):
			p.errorf(fn, "date field %q is not a date; use created_at, updated_at or an attribute holding a date", field)
		default:
			d.Field, d.Attribute = field, true
		}
	}
	if f.has("offset") {
		d.Offset, _ = p.duration(f.get("offset"), "offset")
	}
	if f.has("at") {
		if t := p.timeOfDay(f.get("at"), "at"); t != nil {
			d.At = *t
		}
	}
	return d
}

func (p *parser) reentry(n ast.Node) Reentry {
	r := Reentry{Kind: ReentryNever}
	const hint = "write reentry: never, reentry: always or reentry: {after: 30d}"
	switch yamlnode.Unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		f := p.mapping(n, n, "reentry", reentryFields)
		if f == nil {
			return r
		}
		if !f.has("after") {
			p.errorf(n, "reentry needs after; %s", hint)
			return r
		}
		r.Kind = ReentryAfter
		r.After = p.positiveDuration(f.get("after"), "reentry after")
		return r
	}
	s, ok := p.scalar(n, "reentry")
	if !ok {
		return r
	}
	switch s {
	case "never":
	case "always":
		r.Kind = ReentryAlways
	default:
		if _, err := ParseDuration(s); err == nil {
			p.errorf(n, "bad reentry %q; to allow re-entry after a time write reentry: {after: %s}", s, s)
		} else {
			p.errorf(n, "bad reentry %q; %s", s, hint)
		}
	}
	return r
}

func (p *parser) holdout(n ast.Node) int {
	const hint = "holdout is a percent of entrants from 0 to 100, written as a whole number, such as holdout: 10"
	switch m := yamlnode.Unwrap(n).(type) {
	case *ast.IntegerNode:
		v, ok := intValue(m)
		if !ok || v < 0 || v > 100 {
			p.errorf(n, "holdout %s is out of range; %s", m.GetToken().Value, hint)
			return 0
		}
		return int(v)
	case *ast.StringNode:
		if s := strings.TrimSpace(strings.TrimSuffix(m.Value, "%")); s != m.Value {
			if v, err := strconv.Atoi(s); err == nil && v >= 0 && v <= 100 {
				p.errorf(n, "holdout %q: write the number without %%: holdout: %d", m.Value, v)
				return 0
			}
		}
	}
	p.errorf(n, "bad holdout %s; %s", describeValue(n), hint)
	return 0
}

func describeValue(n ast.Node) string {
	if t := yamlnode.Unwrap(n).GetToken(); t != nil && t.Value != "" {
		switch yamlnode.Unwrap(n).(type) {
		case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		default:
			return strconv.Quote(t.Value)
		}
	}
	return "(" + yamlnode.Describe(n) + ")"
}

func (p *parser) goal(jf *fields) *Goal {
	f := p.mapping(jf.get("goal"), jf.key("goal"), "goal", goalFields)
	if f == nil {
		return nil
	}
	g := &Goal{}
	if !f.has("event") && !f.has("condition") {
		p.errorf(f.at, "goal needs an event, a condition or both; write goal: {event: demo.booked} or goal: {condition: 'contact.is_customer'}")
	}
	if f.has("event") {
		g.Event, _ = p.str(f, "event", "goal event", true, "write the event name, such as demo.booked")
	}
	if f.has("match") {
		if !f.has("event") {
			p.errorf(f.key("match"), "goal match applies to the goal's event; add event: NAME, or use condition for a contact condition")
		} else {
			g.Match = p.expr(f.get("match"), "goal match", boolType)
		}
	}
	if f.has("condition") {
		g.Condition = p.expr(f.get("condition"), "goal condition", boolType)
	}
	if f.has("within") {
		g.Within = p.positiveDuration(f.get("within"), "goal within")
	}
	return g
}

func (p *parser) exitRules(n ast.Node) []*Expr {
	switch m := yamlnode.Unwrap(n).(type) {
	case *ast.SequenceNode:
		var out []*Expr
		for i, v := range m.Values {
			if e := p.expr(v, fmt.Sprintf("exit[%d]", i), boolType); e != nil {
				out = append(out, e)
			}
		}
		return out
	case *ast.StringNode, *ast.LiteralNode:
		if e := p.expr(n, "exit", boolType); e != nil {
			return []*Expr{e}
		}
		return nil
	}
	p.errorf(n, "exit must be a list of conditions on the contact, such as exit: ['contact.is_customer'], not %s", yamlnode.Describe(n))
	return nil
}

func (p *parser) stepList(n, at ast.Node) {
	p.byID = map[string]*Step{}
	seq, ok := yamlnode.Unwrap(n).(*ast.SequenceNode)
	if !ok || len(seq.Values) == 0 {
		if ok {
			n = at
		}
		p.errorf(n, "steps must be a list of at least one step, such as:\n  steps:\n    - id: welcome\n      email: {template: welcome}")
		return
	}
	for i, v := range seq.Values {
		if s := p.step(v, i); s != nil {
			p.steps = append(p.steps, s)
		}
	}
	// Default next: the following step, or "" after the last one.
	for i, s := range p.steps {
		if s.next == "" && !s.explicitNext && i+1 < len(p.steps) && s.Kind != KindExit {
			s.next = p.steps[i+1].ID
		}
	}
}

func (p *parser) step(n ast.Node, i int) *Step {
	f := p.mapping(n, n, fmt.Sprintf("step %d", i+1), stepFields)
	if f == nil {
		return nil
	}
	s := &Step{}
	s.Line, s.Col = yamlnode.Pos(n)
	name := fmt.Sprintf("step %d", i+1)
	id, idn := p.str(f, "id", name+": id", true, "give the step an id, such as id: welcome-email")
	if idn != nil {
		name = fmt.Sprintf("step %q", id)
		switch {
		case !stepIDPattern.MatchString(id):
			p.errorf(idn, "step id %q: use lowercase letters, digits, dashes and underscores, such as %s", id, slug(id))
		case p.byID[id] != nil:
			p.errorf(idn, "duplicate step id %q (the first is at line %d); rename one of them", id, p.byID[id].Line)
		default:
			p.byID[id] = s
		}
	}
	s.ID = id

	var kinds []StepKind
	for _, k := range StepKinds {
		if f.has(string(k)) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		p.errorf(n, "%s has nothing to do; add one of: %s", name, kindList())
		return s
	case 1:
	default:
		p.errorf(f.key(string(kinds[1])), "%s has both %s and %s; a step does one thing: move %s to a step of its own", name, kinds[0], kinds[1], kinds[1])
		return s
	}
	s.Kind = kinds[0]
	if f.has("next") {
		if s.Kind == KindExit {
			p.errorf(f.key("next"), "%s is an exit step: it ends the enrollment, so it has no next; remove next", name)
		} else {
			s.explicitNext = true
			p.ref(f.get("next"), "next", &s.next)
		}
	}
	kv, kn := f.get(string(s.Kind)), f.key(string(s.Kind))
	switch s.Kind {
	case KindEmail:
		s.Email = p.message(kv, kn, "email")
	case KindSMS:
		s.SMS = p.message(kv, kn, "sms")
	case KindWait:
		s.Wait = p.wait(kv, kn)
	case KindWaitFor:
		s.WaitFor = p.waitFor(kv, kn, s)
	case KindBranch:
		s.Branch = p.branch(kv, kn, s)
	case KindSplit:
		s.Split = p.split(kv, kn, s)
	case KindUpdateContact:
		s.UpdateContact = p.updateContact(kv, kn)
	case KindWebhook:
		s.Webhook = p.webhook(kv, kn)
	case KindExit:
		p.mapping(kv, kn, "exit", nil)
	}
	p.guardrails(f, s, name)
	return s
}

func kindList() string {
	var ks []string
	for _, k := range StepKinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

// ref records a step id to resolve once every step is known.
func (p *parser) ref(n ast.Node, where string, dst *string) {
	id, ok := p.scalar(n, where)
	if !ok {
		return
	}
	*dst = id
	p.refs = append(p.refs, stepRef{where: where, node: n, dst: dst})
}

// defaultRef makes dst follow the step's Next once it is known.
type defaultRef struct {
	step *Step
	dst  *string
}

func (p *parser) message(n, at ast.Node, channel string) *Message {
	allowed := emailFields
	if channel == "sms" {
		allowed = smsFields
	}
	f := p.mapping(n, at, channel, allowed)
	if f == nil {
		return nil
	}
	m := &Message{}
	var tn ast.Node
	m.Template, tn = p.str(f, "template", channel+" template", true, fmt.Sprintf("write %s: {template: NAME}", channel))
	if tn != nil && p.opt.Templates != nil && !p.opt.Templates(channel, m.Template) {
		p.errorf(tn, "%s template %q does not exist; create it or fix the name", channel, m.Template)
	}
	if channel == "sms" {
		var names []string
		for _, pu := range Purposes {
			names = append(names, string(pu))
		}
		pu, pn := p.str(f, "purpose", "sms purpose", true, "SMS is sent only where a journey says why: add purpose: "+strings.Join(names, " | "))
		if pn != nil {
			if !slices.Contains(Purposes, Purpose(pu)) {
				p.errorf(pn, "unknown sms purpose %q; %s", pu, yamlnode.Suggest(pu, names, "write one of"))
			} else {
				m.Purpose = Purpose(pu)
			}
		}
	}
	return m
}

func (p *parser) wait(n, at ast.Node) *Wait {
	f := p.mapping(n, at, "wait", waitFields)
	if f == nil {
		return nil
	}
	w := &Wait{}
	var kinds []string
	for _, k := range []string{"for", "until", "until_local"} {
		if f.has(k) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		p.errorf(f.at, "wait needs one of for, until or until_local; write wait: {for: 2d}, wait: {until: 'timestamp(...)'} or wait: {until_local: \"09:00\"}")
		return w
	case 1:
	default:
		p.errorf(f.key(kinds[1]), "wait has both %s and %s; keep one (use two wait steps to wait twice)", kinds[0], kinds[1])
		return w
	}
	switch kinds[0] {
	case "for":
		w.For = p.positiveDuration(f.get("for"), "wait for")
	case "until":
		w.Until = p.expr(f.get("until"), "wait until", timestampType)
	case "until_local":
		w.UntilLocal = p.timeOfDay(f.get("until_local"), "until_local")
	}
	if f.has("weekdays") {
		if kinds[0] != "until_local" {
			p.errorf(f.key("weekdays"), "weekdays applies to until_local only; write wait: {until_local: \"09:00\", weekdays: [mon, tue, wed, thu, fri]}")
		} else {
			w.Weekdays = p.weekdays(f.get("weekdays"))
		}
	}
	return w
}

func (p *parser) weekdays(n ast.Node) []time.Weekday {
	seq, ok := yamlnode.Unwrap(n).(*ast.SequenceNode)
	if !ok {
		p.errorf(n, "weekdays must be a list, such as weekdays: [mon, tue, wed, thu, fri]")
		return nil
	}
	var out []time.Weekday
	for _, v := range seq.Values {
		s, ok := p.scalar(v, "weekday")
		if !ok {
			continue
		}
		l := strings.ToLower(s)
		i := slices.Index(weekdayNames, l)
		if i < 0 && len(l) > 3 {
			for j, w := range weekdayNames {
				if strings.HasPrefix(time.Weekday(j).String(), strings.ToUpper(l[:1])+l[1:]) && strings.HasPrefix(l, w) {
					i = j
				}
			}
			if i >= 0 {
				p.errorf(v, "bad weekday %q; write %s", s, weekdayNames[i])
				continue
			}
		}
		if i < 0 {
			p.errorf(v, "bad weekday %q; %s", s, yamlnode.Suggest(l, weekdayNames, "write one of"))
			continue
		}
		if !slices.Contains(out, time.Weekday(i)) {
			out = append(out, time.Weekday(i))
		}
	}
	return out
}

func (p *parser) waitFor(n, at ast.Node, s *Step) *WaitFor {
	f := p.mapping(n, at, "wait_for", waitForFields)
	if f == nil {
		return nil
	}
	w := &WaitFor{}
	w.Event, _ = p.str(f, "event", "wait_for event", true, "write the event to wait for, such as event: email.clicked")
	if f.has("match") {
		w.Match = p.expr(f.get("match"), "wait_for match", boolType)
	}
	if !f.has("timeout") {
		p.errorf(f.at, "wait_for needs a timeout, so no contact waits forever; write timeout: 2d")
	} else {
		w.Timeout = p.positiveDuration(f.get("timeout"), "wait_for timeout")
	}
	p.optionalRef(f, "on_event", &w.OnEvent, s)
	p.optionalRef(f, "on_timeout", &w.OnTimeout, s)
	return w
}

// optionalRef reads a step reference that defaults to the step's Next.
func (p *parser) optionalRef(f *fields, key string, dst *string, s *Step) {
	if f.has(key) {
		p.ref(f.get(key), key, dst)
		return
	}
	p.defaults = append(p.defaults, defaultRef{step: s, dst: dst})
}

func (p *parser) branch(n, at ast.Node, s *Step) *Branch {
	b := &Branch{}
	seq, ok := yamlnode.Unwrap(n).(*ast.SequenceNode)
	if !ok || len(seq.Values) == 0 {
		p.errorf(n, "branch must be a list of cases, such as:\n  branch:\n    - if: 'contact.is_customer'\n      then: onboarding\n    - else: nurture")
		return b
	}
	hasElse := false
	var thens []ast.Node // per case, its then value (nil when missing)
	for i, v := range seq.Values {
		f := p.mapping(v, v, fmt.Sprintf("branch case %d", i+1), caseFields)
		if f == nil {
			continue
		}
		switch {
		case f.has("else"):
			if f.has("if") || f.has("then") {
				p.errorf(f.key("else"), "else is a case of its own; write it as a separate item: - else: STEP")
				continue
			}
			if hasElse {
				p.errorf(f.key("else"), "branch has a second else; keep one")
				continue
			}
			if i != len(seq.Values)-1 {
				p.errorf(f.key("else"), "else must be the last case of the branch; the cases after it would never be checked")
			}
			hasElse = true
			p.ref(f.get("else"), "else", &b.Else)
		case f.has("if"):
			b.Cases = append(b.Cases, BranchCase{If: p.expr(f.get("if"), "if", boolType)})
			thens = append(thens, f.get("then"))
			if !f.has("then") {
				p.errorf(f.key("if"), "this if has no then; add then: STEP, the step to go to when it is true")
			}
		case f.has("then"):
			p.errorf(f.key("then"), "this then has no if; add if: CONDITION, or write else: STEP for the default")
		default:
			p.errorf(v, "a branch case needs if and then, or else; write - if: CONDITION\n    then: STEP")
		}
	}
	// b.Cases no longer grows: its elements can be referenced.
	for i, n := range thens {
		if n != nil {
			p.ref(n, "then", &b.Cases[i].Then)
		}
	}
	if !hasElse {
		p.defaults = append(p.defaults, defaultRef{step: s, dst: &b.Else})
	}
	return b
}

func (p *parser) split(n, at ast.Node, s *Step) []SplitPath {
	seq, ok := yamlnode.Unwrap(n).(*ast.SequenceNode)
	if !ok || len(seq.Values) == 0 {
		p.errorf(n, "split must be a list of weighted paths, such as split: [{weight: 50, next: a}, {weight: 50, next: b}]")
		return nil
	}
	paths := make([]SplitPath, len(seq.Values))
	sum, bad := 0, false
	for i, v := range seq.Values {
		f := p.mapping(v, v, fmt.Sprintf("split path %d", i+1), splitFields)
		if f == nil {
			bad = true
			continue
		}
		if !f.has("weight") {
			p.errorf(v, "split path %d needs a weight, a percent such as weight: 50", i+1)
			bad = true
		} else if w, ok := splitWeight(f.get("weight")); !ok {
			p.errorf(f.get("weight"), "bad split weight %s; write a whole percent from 0 to 100", describeValue(f.get("weight")))
			bad = true
		} else {
			paths[i].Weight = w
			sum += paths[i].Weight
		}
		p.optionalRef(f, "next", &paths[i].Next, s)
	}
	if !bad && sum != 100 {
		p.errorf(at, "split weights add up to %d, not 100; change them so they add up to 100", sum)
	}
	return paths
}

func (p *parser) updateContact(n, at ast.Node) *UpdateContact {
	f := p.mapping(n, at, "update_contact", updateFields)
	if f == nil {
		return nil
	}
	u := &UpdateContact{Set: map[string]any{}}
	if !f.has("set") {
		p.errorf(f.at, "update_contact needs set; write update_contact: {set: {journey_stage: nurture}}")
		return u
	}
	set, ok := yamlnode.Unwrap(f.get("set")).(*ast.MappingNode)
	var pairs []*ast.MappingValueNode
	if ok {
		pairs = set.Values
	} else if mv, ok := yamlnode.Unwrap(f.get("set")).(*ast.MappingValueNode); ok {
		pairs = []*ast.MappingValueNode{mv}
	}
	if len(pairs) == 0 {
		p.errorf(f.get("set"), "set must map contact fields to values, such as set: {journey_stage: nurture, \"attributes.plan\": pro}")
		return u
	}
	for _, mv := range pairs {
		k := yamlnode.KeyString(mv.Key)
		v := yamlnode.Unwrap(mv.Value)
		switch {
		case k == "lifecycle_stage" || k == "journey_stage":
			s, ok := v.(*ast.StringNode)
			if !ok {
				p.errorf(mv.Value, "%s must be text, such as %s: nurture", k, k)
				continue
			}
			u.Set[k] = s.Value
		case k == "is_customer":
			b, ok := v.(*ast.BoolNode)
			if !ok {
				p.errorf(mv.Value, "is_customer must be true or false")
				continue
			}
			u.Set[k] = b.Value
		case strings.HasPrefix(k, "attributes.") && len(k) > len("attributes."):
			val, ok := literal(v)
			if !ok {
				p.errorf(mv.Value, "%s must be a single value (text, number, true/false, or null to remove it), not %s", k, yamlnode.Describe(v))
				continue
			}
			u.Set[k] = val
		case slices.Contains([]string{"id", "email", "phone", "timezone", "created_at", "updated_at"}, k):
			p.errorf(mv.Key, "a journey cannot set %s; it can set %s or attributes.NAME", k, strings.Join(contactSetKeys, ", "))
		default:
			if d := yamlnode.Suggest(k, contactSetKeys, ""); strings.HasPrefix(d, "did you mean") {
				p.errorf(mv.Key, "unknown contact field %q; %s", k, d)
			} else {
				p.errorf(mv.Key, "unknown contact field %q; for an attribute write \"attributes.%s\"; the fields are: %s", k, k, strings.Join(contactSetKeys, ", "))
			}
		}
	}
	return u
}

// intValue is an integer node's value, if it fits an int64.
func intValue(n *ast.IntegerNode) (int64, bool) {
	switch v := n.Value.(type) {
	case int64:
		return v, true
	case uint64:
		if v <= 1<<62 {
			return int64(v), true
		}
	}
	return 0, false
}

func splitWeight(n ast.Node) (int, bool) {
	m, ok := yamlnode.Unwrap(n).(*ast.IntegerNode)
	if !ok {
		return 0, false
	}
	v, ok := intValue(m)
	if !ok || v < 0 || v > 100 {
		return 0, false
	}
	return int(v), true
}

// literal converts a scalar node to its Go value.
func literal(n ast.Node) (any, bool) {
	switch m := n.(type) {
	case *ast.StringNode:
		return m.Value, true
	case *ast.LiteralNode:
		return m.Value.Value, true
	case *ast.IntegerNode:
		if v, ok := intValue(m); ok {
			return v, true
		}
		if v, ok := m.Value.(uint64); ok {
			return float64(v), true
		}
	case *ast.FloatNode:
		return m.Value, true
	case *ast.BoolNode:
		return m.Value, true
	case *ast.NullNode:
		return nil, true
	}
	return nil, false
}

func (p *parser) webhook(n, at ast.Node) *Webhook {
	f := p.mapping(n, at, "webhook", webhookFields)
	if f == nil {
		return nil
	}
	w := &Webhook{}
	var un ast.Node
	w.URL, un = p.str(f, "url", "webhook url", true, "write url: https://crm.example.com/hooks/nudge")
	if un != nil {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.errorf(un, "bad webhook url %q; write a full http or https URL, such as https://crm.example.com/hooks/nudge", w.URL)
		}
	}
	var sn ast.Node
	w.SecretEnv, sn = p.str(f, "secret_env", "secret_env", false, "")
	if sn != nil && !envPattern.MatchString(w.SecretEnv) {
		p.errorf(sn, "secret_env %q must name an environment variable, such as NUDGE_CRM_WEBHOOK_SECRET; the secret itself never goes in the journey file", w.SecretEnv)
	}
	return w
}

// resolve checks step references and fills the defaults.
func (p *parser) resolve() {
	ids := make([]string, 0, len(p.steps))
	for _, s := range p.steps {
		if s.ID != "" {
			ids = append(ids, s.ID)
		}
	}
	for _, r := range p.refs {
		if p.byID[*r.dst] != nil {
			continue
		}
		list := "the steps are: " + strings.Join(ids, ", ")
		if d := yamlnode.Suggest(*r.dst, ids, ""); strings.HasPrefix(d, "did you mean") {
			list = d + " " + list
		}
		p.errorf(r.node, "unknown step %q in %s; %s", *r.dst, r.where, list)
		*r.dst = ""
	}
	for _, d := range p.defaults {
		*d.dst = d.step.next
	}
}
