package template

import (
	"html"
	"strings"

	"github.com/osteele/liquid/parser"
)

// Most parts are text and a handful of objects such as
// {{ contact.attributes.first_name | default: "there" }} (HTML parts add
// | escape to each, see escapeObjects). For those a plan renders the part
// without the Liquid engine, whose filter calls go through reflection and
// cost most of a render: it looks each distinct object up once and copies
// the text between them. A plan handles string and missing values only;
// for any other value (a number, a date, a list) the part is rendered by
// Liquid, as is every part with a tag ({% if %}, {% for %}, …), other
// filters or whitespace control. The render is the same either way
// (TestPlanMatchesLiquid).

// plan is a part compiled to text and objects.
type plan struct {
	text  []string // text[i] comes before object i; one more than objs
	objs  []int    // each object's index in exprs
	exprs []expr   // the distinct objects
	size  int      // bytes of text
}

// expr is an object: a variable path and its filters, applied in order.
type expr struct {
	path    []string
	filters []filter
}

type filter struct {
	name string // "default", "escape" or "raw"
	arg  string // default's literal
}

// compile returns the plan of a part's source, or nil when Liquid must
// render it.
func compile(src string) *plan {
	p := &plan{}
	seen := map[string]int{}
	var text strings.Builder
	for _, tok := range parser.Scan(src, parser.SourceLoc{}, nil) {
		switch tok.Type {
		case parser.TextTokenType:
			text.WriteString(tok.Source)
		case parser.ObjTokenType:
			if strings.HasPrefix(tok.Source, "{{-") || strings.HasSuffix(tok.Source, "-}}") {
				return nil
			}
			i, ok := seen[tok.Args]
			if !ok {
				e, ok := parseExpr(tok.Args)
				if !ok {
					return nil
				}
				i = len(p.exprs)
				p.exprs = append(p.exprs, e)
				seen[tok.Args] = i
			}
			p.text = append(p.text, text.String())
			p.size += text.Len()
			text.Reset()
			p.objs = append(p.objs, i)
		default:
			return nil
		}
	}
	p.text = append(p.text, text.String())
	p.size += text.Len()
	return p
}

// parseExpr reads `a.b.c | default: "x" | escape`; ok is false for
// anything else.
func parseExpr(s string) (e expr, ok bool) {
	segs := strings.Split(s, "|")
	for _, name := range strings.Split(strings.TrimSpace(segs[0]), ".") {
		if !isIdent(name) {
			return expr{}, false
		}
		switch name {
		case "size", "first", "last":
			// Liquid answers these for lists, strings and maps without
			// the key: not a plain lookup.
			return expr{}, false
		}
		e.path = append(e.path, name)
	}
	for _, seg := range segs[1:] {
		name, arg, hasArg := strings.Cut(strings.TrimSpace(seg), ":")
		name = strings.TrimSpace(name)
		switch {
		case (name == "escape" || name == "raw") && !hasArg:
			e.filters = append(e.filters, filter{name: name})
		case name == "default" && hasArg:
			arg = strings.TrimSpace(arg)
			if len(arg) < 2 || (arg[0] != '"' && arg[0] != '\'') || arg[len(arg)-1] != arg[0] ||
				strings.ContainsAny(arg[1:len(arg)-1], `"'\`) {
				return expr{}, false
			}
			e.filters = append(e.filters, filter{name: name, arg: arg[1 : len(arg)-1]})
		default:
			return expr{}, false
		}
	}
	return e, true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// root is where a plan looks its objects up: for a path, the value at its
// first used keys (which the lookup goes on from).
type root func(path []string) (v any, used int)

// render renders the plan from r; ok is false when a value is neither a
// string nor missing, and Liquid must render the part.
func (p *plan) render(r root) (out string, ok bool) {
	var buf [8]string
	vals := buf[:0]
	n := p.size
	for _, e := range p.exprs {
		v, ok := e.eval(r)
		if !ok {
			return "", false
		}
		vals = append(vals, v)
		n += len(v)
	}
	var sb strings.Builder
	sb.Grow(n + len(p.objs)*8)
	for i, o := range p.objs {
		sb.WriteString(p.text[i])
		sb.WriteString(vals[o])
	}
	sb.WriteString(p.text[len(p.objs)])
	return sb.String(), true
}

// eval looks the object up and applies its filters as Liquid does for a
// string or a missing value (nil, which renders empty).
func (e *expr) eval(r root) (string, bool) {
	cur, used := r(e.path)
	for _, k := range e.path[used:] {
		if cur == nil {
			break // a property of nothing is nothing
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = m[k]
	}
	s, isString := cur.(string)
	if cur != nil && !isString {
		return "", false
	}
	missing := cur == nil
	for _, f := range e.filters {
		switch f.name {
		case "default":
			if missing || s == "" {
				s, missing = f.arg, false
			}
		case "escape":
			s, missing = html.EscapeString(s), false
		}
	}
	return s, true
}
