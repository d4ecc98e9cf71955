package template

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/osteele/liquid/parser"

	"github.com/nudge/nudge"
)

// Validate checks the templates of the name (email, SMS or both): every
// variable must be one that can exist (contact, event, journey and message
// with their fields; anything under contact.attributes, event.properties,
// event.context and message.details; names the template assigns), no
// {% include %} (templates do not read files), and every filter must
// exist. It returns every problem, each as "file:line: message", joined.
// ENOTFOUND when no template has the name.
func (s *Set) Validate(name string) error {
	var errs []error
	found := false
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		s.mu.Lock()
		f, ok := s.files[ch+"/"+name]
		s.mu.Unlock()
		if !ok {
			continue
		}
		found = true
		errs = append(errs, validateFile(f)...)
		if len(errs) == 0 {
			// A trial render finds what the static check cannot: an
			// unknown filter, a filter given the wrong arguments.
			if _, err := s.RenderChannel(ch, name, sampleData()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !found {
		return nudge.Errorf(nudge.ENOTFOUND, "no email or sms template %q", name)
	}
	return errors.Join(errs...)
}

// ValidateAll validates every template of the set.
func (s *Set) ValidateAll() error {
	seen := map[string]bool{}
	var errs []error
	for _, k := range s.Names() {
		_, name, _ := strings.Cut(k, "/")
		if !seen[name] {
			seen[name] = true
			if err := s.Validate(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func sampleData() Data {
	return Data{
		Contact: &nudge.Contact{ID: "c1", Timezone: "UTC"},
		Event:   &nudge.Event{Name: "sample", Type: nudge.EventTrack},
		Journey: Journey{ID: "j", Version: 1},
		Message: &nudge.Message{ID: "m1"},
	}
}

// ref is a variable path a template reads, such as contact.attributes.plan.
type ref struct {
	path []string
	line int
}

func validateFile(f *file) []error {
	var errs []error
	locals := map[string]bool{"forloop": true, "tablerowloop": true}
	var refs []ref
	for _, p := range f.parts {
		for _, tok := range parser.Scan(p.src, parser.SourceLoc{LineNo: p.line}, nil) {
			line := tok.SourceLoc.LineNo
			switch tok.Type {
			case parser.ObjTokenType:
				refs = append(refs, exprRefs(tok.Args, line)...)
			case parser.TagTokenType:
				args := tok.Args
				switch tok.Name {
				case "include", "render":
					errs = append(errs, nudge.Errorf(nudge.EINVALID, "%s:%d: {%% %s %%} is not allowed: a template cannot read other files", f.path, line, tok.Name))
					continue
				case "assign":
					v, rest, _ := strings.Cut(args, "=")
					locals[strings.TrimSpace(v)] = true
					args = rest
				case "capture", "increment", "decrement":
					locals[strings.TrimSpace(args)] = true
					continue
				case "for", "tablerow":
					v, rest, _ := strings.Cut(strings.TrimSpace(args), " in ")
					locals[strings.TrimSpace(v)] = true
					args = rest
				case "if", "elsif", "unless", "case", "when", "cycle":
				default:
					continue
				}
				refs = append(refs, exprRefs(args, line)...)
			}
		}
	}
	for _, r := range refs {
		if locals[r.path[0]] {
			continue
		}
		if msg := checkPath(r.path); msg != "" {
			errs = append(errs, nudge.Errorf(nudge.EINVALID, "%s:%d: %s", f.path, r.line, msg))
		}
	}
	return errs
}

// checkPath returns what is wrong with a variable path, or "".
func checkPath(path []string) string {
	var fields []string
	switch path[0] {
	case "contact":
		fields = contactFields
	case "event":
		fields = eventFields
	case "journey":
		fields = journeyFields
	case "message":
		fields = messageFields
	default:
		return fmt.Sprintf("unknown variable %q; templates see contact, event, journey and message", path[0])
	}
	if len(path) < 2 || dynamicFields[path[0]+"."+path[1]] {
		return ""
	}
	if !slices.Contains(fields, path[1]) {
		hint := ""
		if path[0] == "contact" {
			hint = fmt.Sprintf(" (CRM fields are under contact.attributes, such as contact.attributes.%s)", path[1])
		}
		if path[0] == "event" {
			hint = fmt.Sprintf(" (event data is under event.properties, such as event.properties.%s)", path[1])
		}
		return fmt.Sprintf("%s has no field %q; it has %s%s", path[0], path[1], strings.Join(fields, ", "), hint)
	}
	if len(path) > 2 && !strings.HasSuffix(path[1], "_at") && path[1] != "timestamp" && !slices.Contains([]string{"size", "first", "last"}, path[2]) {
		return fmt.Sprintf("%s.%s has no field %q", path[0], path[1], path[2])
	}
	return ""
}

var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "contains": true, "true": true, "false": true,
	"nil": true, "null": true, "empty": true, "blank": true, "in": true, "reversed": true,
	"limit": true, "offset": true, "cols": true, "with": true, "as": true,
}

// exprRefs finds the variable paths an expression reads. It skips string
// literals, numbers, keywords, filter names and named arguments; a path
// stops at a computed index (a[b]).
func exprRefs(s string, line int) []ref {
	var refs []ref
	afterPipe := false
	isStart := func(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c == '-' || c >= '0' && c <= '9' }
	ident := func(i int) int {
		j := i
		for j < len(s) && isPart(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '?' {
			j++
		}
		return j
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return refs
			}
			i += j + 2
		case c == '|':
			afterPipe = true
			i++
		case c >= '0' && c <= '9':
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' && i+1 < len(s) && s[i+1] != '.') {
				i++
			}
		case isStart(c):
			j := ident(i)
			path := []string{s[i:j]}
			for j < len(s) {
				if s[j] == '.' && j+1 < len(s) && isStart(s[j+1]) {
					k := ident(j + 1)
					path = append(path, s[j+1:k])
					j = k
					continue
				}
				if s[j] == '[' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\'') {
					q := s[j+1]
					k := strings.IndexByte(s[j+2:], q)
					if k >= 0 && j+2+k+1 < len(s) && s[j+2+k+1] == ']' {
						path = append(path, s[j+2:j+2+k])
						j = j + 2 + k + 2
						continue
					}
				}
				break
			}
			rest := strings.TrimLeft(s[j:], " \t\n")
			switch {
			case afterPipe:
				afterPipe = false // a filter name
			case keywords[path[0]] && len(path) == 1:
			case strings.HasPrefix(rest, ":"): // a named argument
			default:
				refs = append(refs, ref{path: path, line: line})
			}
			i = j
		default:
			i++
		}
	}
	return refs
}
