package template

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osteele/liquid"
	"github.com/osteele/liquid/parser"
	"github.com/osteele/tuesday"

	"github.com/nudge/nudge"
)

// Template file suffixes: NAME.email.liquid and NAME.sms.liquid.
const (
	suffixEmail = ".email.liquid"
	suffixSMS   = ".sms.liquid"
)

// Part names of a template.
const (
	partSubject = "subject"
	partText    = "text"
	partHTML    = "html"
	partSMS     = "sms"
)

// part is one Liquid source of a template file: the subject line, the text
// or HTML body, or the SMS text.
type part struct {
	name string
	src  string
	line int // 1-based line of src's first line in the file
	// fast renders the part without Liquid when it can (see plan); nil
	// when it cannot.
	fast *plan
}

// liquidSource is the source Liquid parses for a part: an HTML part's
// objects are escaped.
func (p part) liquidSource() string {
	if p.name == partHTML {
		return escapeObjects(p.src)
	}
	return p.src
}

type file struct {
	channel string
	name    string
	path    string // for messages: "welcome.email.liquid"
	parts   []part
}

func (f *file) part(name string) (part, bool) {
	for _, p := range f.parts {
		if p.name == name {
			return p, true
		}
	}
	return part{}, false
}

// Set is the templates of a folder, parsed once and rendered many times.
// It is safe for concurrent use.
type Set struct {
	files map[string]*file // key: channel + "/" + name
	zone  *time.Location

	mu    sync.Mutex
	zones map[string]*zoned // by IANA name; "" is the default zone
}

// zoned is a Liquid engine whose date filters format in one time zone, and
// the templates it parsed. Liquid filters do not see the render's data, so
// the contact's zone is chosen by choosing the engine.
type zoned struct {
	engine *liquid.Engine
	mu     sync.Mutex
	parsed map[string]*liquid.Template // key: file key + "/" + part
}

// Options configure Load.
type Options struct {
	// Zone formats dates for contacts without a (valid) time zone. Default UTC.
	Zone *time.Location
}

// Load reads the *.email.liquid and *.sms.liquid files at the top of fsys.
// It parses every template and returns every problem it finds, each with
// its file and line, joined in one error; the returned Set holds the
// templates without problems (it is never nil).
func Load(fsys fs.FS, opt Options) (*Set, error) {
	s := &Set{files: map[string]*file{}, zone: opt.Zone, zones: map[string]*zoned{}}
	if s.zone == nil {
		s.zone = time.UTC
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return s, fmt.Errorf("template: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		src, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("template: %w", err))
			continue
		}
		f, err := parseFile(e.Name(), string(src))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f == nil {
			continue // not a template
		}
		if err := s.add(f); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// Add parses one template from source, as if it were the file named
// filename (NAME.email.liquid or NAME.sms.liquid), replacing a template of
// the same channel and name. The API uses it for templates it is sent.
func (s *Set) Add(filename, src string) error {
	f, err := parseFile(filename, src)
	if err != nil {
		return err
	}
	if f == nil {
		return nudge.Errorf(nudge.EINVALID, "%s: a template file is named NAME.email.liquid or NAME.sms.liquid", filename)
	}
	return s.add(f)
}

func (s *Set) add(f *file) error {
	k := f.channel + "/" + f.name
	s.mu.Lock()
	// Drop what the engines parsed of an earlier version of the template.
	for _, z := range s.zones {
		z.mu.Lock()
		for pk := range z.parsed {
			if strings.HasPrefix(pk, k+"/") {
				delete(z.parsed, pk)
			}
		}
		z.mu.Unlock()
	}
	s.mu.Unlock()
	// Parse once now so that syntax errors are reported when loading.
	z := s.engine("")
	for i, p := range f.parts {
		if _, err := z.template(f, p); err != nil {
			return err
		}
		f.parts[i].fast = compile(p.liquidSource())
	}
	s.mu.Lock()
	s.files[k] = f
	s.mu.Unlock()
	return nil
}

// Exists reports whether a template of the channel ("email", "sms") and
// name exists. It is the shape journey.Options.Templates takes.
func (s *Set) Exists(channel, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[channel+"/"+name]
	return ok
}

// Names returns the channel/name keys of the templates, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k := range s.files {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// parseFile splits a template file into its parts. It returns nil, nil for
// a file that is not a template.
func parseFile(filename, src string) (*file, error) {
	base := path.Base(filename)
	f := &file{path: filename}
	switch {
	case strings.HasSuffix(base, suffixEmail):
		f.channel, f.name = nudge.ChannelEmail, strings.TrimSuffix(base, suffixEmail)
	case strings.HasSuffix(base, suffixSMS):
		f.channel, f.name = nudge.ChannelSMS, strings.TrimSuffix(base, suffixSMS)
	default:
		return nil, nil
	}
	if f.name == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "%s: the file name has no template name before %s", filename, strings.TrimPrefix(base, "."))
	}
	src = strings.ReplaceAll(src, "\r\n", "\n")
	if f.channel == nudge.ChannelSMS {
		f.parts = []part{{name: partSMS, src: strings.TrimRight(src, "\n"), line: 1}}
		return f, nil
	}
	return f, parseEmail(f, src)
}

// parseEmail reads an email template: header lines ("Subject: …"), a blank
// line, the text body, and optionally a line "--- html ---" followed by
// the HTML body. A line "--- text ---" may start the text body explicitly,
// so the HTML part can come first.
func parseEmail(f *file, src string) error {
	lines := strings.SplitAfter(src, "\n")
	i := 0
	for ; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\n")
		if strings.TrimSpace(l) == "" {
			i++
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.ContainsAny(k, " \t{") {
			return nudge.Errorf(nudge.EINVALID, "%s:%d: expected a header such as \"Subject: …\" or a blank line before the body", f.path, i+1)
		}
		switch strings.ToLower(k) {
		case partSubject:
			if _, dup := f.part(partSubject); dup {
				return nudge.Errorf(nudge.EINVALID, "%s:%d: a second Subject header", f.path, i+1)
			}
			f.parts = append(f.parts, part{name: partSubject, src: strings.TrimSpace(v), line: i + 1})
		default:
			return nudge.Errorf(nudge.EINVALID, "%s:%d: unknown header %q; an email template has Subject:", f.path, i+1, k)
		}
	}
	if _, ok := f.part(partSubject); !ok {
		return nudge.Errorf(nudge.EINVALID, "%s:1: an email template starts with a Subject: line", f.path)
	}
	cur := part{name: partText, line: i + 1}
	var body strings.Builder
	flush := func() error {
		if _, dup := f.part(cur.name); dup {
			return nudge.Errorf(nudge.EINVALID, "%s:%d: a second %s part", f.path, cur.line-1, cur.name)
		}
		cur.src = strings.TrimRight(body.String(), "\n")
		if cur.src != "" || cur.name == partText {
			f.parts = append(f.parts, cur)
		}
		body.Reset()
		return nil
	}
	for ; i < len(lines); i++ {
		switch strings.TrimSpace(lines[i]) {
		case "--- html ---", "--- text ---":
			if err := flush(); err != nil {
				return err
			}
			cur = part{name: strings.Trim(strings.TrimSpace(lines[i]), "- "), line: i + 2}
			continue
		}
		body.WriteString(lines[i])
	}
	return flush()
}

// engine returns the engine of a time zone, "" for the Set's default zone.
func (s *Set) engine(zone string) *zoned {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z, ok := s.zones[zone]; ok {
		return z
	}
	loc := s.zone
	if zone != "" {
		l, err := time.LoadLocation(zone)
		if err != nil {
			// An unknown zone formats like a contact without one; the
			// ingest normalizer keeps such zones out of contacts.
			if z, ok := s.zones[""]; ok {
				s.zones[zone] = z
				return z
			}
		} else {
			loc = l
		}
	}
	z := &zoned{engine: newEngine(loc), parsed: map[string]*liquid.Template{}}
	s.zones[zone] = z
	return z
}

func (z *zoned) template(f *file, p part) (*liquid.Template, error) {
	k := f.channel + "/" + f.name + "/" + p.name
	z.mu.Lock()
	t, ok := z.parsed[k]
	z.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := parse(z.engine, p.liquidSource(), f, p.line)
	if err != nil {
		return nil, err
	}
	z.mu.Lock()
	z.parsed[k] = t
	z.mu.Unlock()
	return t, nil
}

// parse parses one part. osteele/liquid panics on some input (an integer
// literal too large for int64): that is a problem of the template, reported
// like a syntax error, not a crash.
func parse(e *liquid.Engine, src string, f *file, line int) (t *liquid.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, nudge.Errorf(nudge.EINVALID, "%s:%d: cannot parse the template: %v", f.path, line, r)
		}
	}()
	t, serr := e.ParseTemplateLocation([]byte(src), f.path, line)
	if serr != nil {
		return nil, sourceError(f, serr)
	}
	return t, nil
}

// sourceError turns a Liquid error into "file:line: message".
func sourceError(f *file, err error) error {
	var se parser.Error
	if !errors.As(err, &se) {
		return nudge.Errorf(nudge.EINVALID, "%s: %v", f.path, err)
	}
	msg := se.Error()
	if c := se.Cause(); c != nil {
		msg = c.Error()
	} else if _, after, ok := strings.Cut(msg, ": "); ok {
		msg = strings.TrimSuffix(after, " in "+f.path)
	}
	return nudge.Errorf(nudge.EINVALID, "%s:%d: %s", f.path, se.LineNumber(), msg)
}

// escapeObjects appends an escape filter to every {{ object }} of an HTML
// part, so values are HTML-escaped (osteele/liquid has no auto-escape). An
// object whose last filter is raw is left as it is, and so is the content
// of {% raw %} blocks.
func escapeObjects(src string) string {
	var b strings.Builder
	raw := false
	for _, tok := range parser.Scan(src, parser.SourceLoc{}, nil) {
		switch tok.Type {
		case parser.TagTokenType:
			switch tok.Name {
			case "raw":
				raw = true
			case "endraw":
				raw = false
			}
		case parser.ObjTokenType:
			if !raw && !endsWithRaw(tok.Args) {
				end := len(tok.Source) - 2
				if tok.Source[end-1] == '-' {
					end--
				}
				b.WriteString(tok.Source[:end])
				b.WriteString(" | escape ")
				b.WriteString(tok.Source[end:])
				continue
			}
		}
		b.WriteString(tok.Source)
	}
	return b.String()
}

func endsWithRaw(args string) bool {
	i := strings.LastIndex(args, "|")
	return i >= 0 && strings.TrimSpace(args[i+1:]) == "raw"
}

func newEngine(loc *time.Location) *liquid.Engine {
	e := liquid.NewEngine()
	e.RegisterFilter("date", func(v any, format func(string) string) (string, error) {
		t, ok := toTime(v, loc)
		if !ok {
			return toString(v), nil
		}
		return tuesday.Strftime(format("%a, %b %d, %y"), t)
	})
	e.RegisterFilter("local_time", func(v any, layout func(string) string) string {
		t, ok := toTime(v, loc)
		if !ok {
			return toString(v)
		}
		return t.Format(layout(time.RFC1123))
	})
	e.RegisterFilter("raw", func(v any) any { return v })
	return e
}

func toString(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// toTime reads a time (a time.Time, an RFC 3339 string, a date, Unix
// seconds) and returns it in loc. A date without a time is that day in loc,
// so a renewal date is not shifted to the day before.
func toTime(v any, loc *time.Location) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v.In(loc), !v.IsZero()
	case *time.Time:
		if v == nil {
			return time.Time{}, false
		}
		return v.In(loc), !v.IsZero()
	case int:
		return time.Unix(int64(v), 0).In(loc), true
	case int64:
		return time.Unix(v, 0).In(loc), true
	case float64:
		return time.Unix(int64(v), 0).In(loc), true
	case string:
		s := strings.TrimSpace(v)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.In(loc), true
			}
		}
		if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
