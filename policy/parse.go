package policy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	yamlparser "github.com/goccy/go-yaml/parser"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/internal/yamlnode"
)

// Parse reads a policy file. What the file leaves out keeps the shipped
// default (Default); caps, when given, replace the default caps; regions
// given replace the shipped region of the same name. When anything is wrong
// it returns a *ValidationError with every problem, each at its file:line:col.
func Parse(file string, src []byte) (*Policy, error) {
	ps := &parser{file: file}
	p := Default()
	if root := ps.root(src, "a policy file"); root != nil {
		if f := ps.mapping(root, "policy", policyFields); f != nil {
			ps.policy(f, p)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseOverride reads a journey's or a step's policy override: the fields
// consent, sms, quiet_hours, caps and on_cap of a policy file, which may
// only tighten the workspace's (Policy.Tighten checks that).
func ParseOverride(file string, src []byte) (*Override, error) {
	ps := &parser{file: file}
	o := &Override{File: file}
	if root := ps.root(src, "an override"); root != nil {
		if f := ps.mapping(root, "override", overrideFields); f != nil {
			ps.override(f, o)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return o, nil
}

var (
	policyFields        = []string{"timezone", "consent", "sms", "quiet_hours", "jitter", "caps", "transactional", "on_cap", "priorities", "keywords", "opt_out_pause", "opt_out_notice", "sms_budgets"}
	overrideFields      = []string{"consent", "sms", "quiet_hours", "caps", "on_cap"}
	consentPurposes     = []string{nudge.PurposeMarketing, nudge.PurposeTransactional}
	requirements        = []string{RequireOptedIn, RequireNotOptedOut}
	smsFields           = []string{"purposes", "awareness_stages", "engagement"}
	engagementFields    = []string{"within", "events"}
	quietFields         = []string{"allow", "days", "closed", "transactional", "regions"}
	tightQuietFields    = []string{"allow", "days", "closed"}
	regionFields        = []string{"allow", "days", "closed"}
	capFields           = []string{"channel", "limit", "per", "calendar_days", "scope", "region"}
	transactionalFields = []string{"bypass_caps", "count_when_bypassing"}
	keywordFields       = []string{"program", "frequency", "support", "revocation", "languages"}
	languageFields      = []string{"code", "opt_out", "opt_in", "help", "review_words", "revocations", "replies"}
	replyFields         = []string{"opt_out", "opt_in", "help"}
	optOutPauseFields   = []string{"rate", "min_sends", "over"}
	optOutNoticeFields  = []string{"text", "when"}
	noticeWhens         = []string{NoticeFirst, NoticeEvery, NoticeNever}
	onCaps              = []string{OnCapSkip, OnCapDefer}
	scopes              = []string{"all", ScopeJourney}

	regionPattern = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
	windowPattern = regexp.MustCompile(`^([01]?[0-9]|2[0-4]):([0-5][0-9])\s*(?:-|–|to)\s*([01]?[0-9]|2[0-4]):([0-5][0-9])$`)
	datePattern   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	durPattern    = regexp.MustCompile(`^(\d+(?:w|d|h|m|s))+$`)
	durPart       = regexp.MustCompile(`(\d+)(w|d|h|m|s)`)
)

type parser struct {
	file     string
	problems []Problem
}

func (ps *parser) err() error {
	if len(ps.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.problems, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return &ValidationError{Problems: ps.problems}
}

func (ps *parser) errAt(line, col int, format string, args ...any) {
	ps.problems = append(ps.problems, Problem{File: ps.file, Line: max(line, 1), Col: max(col, 1), Message: fmt.Sprintf(format, args...)})
}

func (ps *parser) errorf(n ast.Node, format string, args ...any) {
	line, col := yamlnode.Pos(n)
	ps.errAt(line, col, format, args...)
}

func (ps *parser) root(src []byte, what string) ast.Node {
	f, err := yamlparser.ParseBytes(bytes.Clone(src), 0, yamlparser.AllowDuplicateMapKey())
	if err != nil {
		var se *yaml.SyntaxError
		if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
			ps.errAt(se.Token.Position.Line, se.Token.Position.Column, "YAML syntax error: %s", se.Message)
		} else {
			ps.errAt(1, 1, "YAML syntax error: %s", err)
		}
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil // empty: the defaults
	}
	if len(docs) > 1 {
		ps.errorf(docs[1].Body, "a second YAML document; %s holds one policy", what)
	}
	return docs[0].Body
}

// fields is a mapping whose keys were checked against the allowed ones.
type fields struct {
	at ast.Node
	kv map[string]*ast.MappingValueNode
}

func (f *fields) has(k string) bool { return f.kv[k] != nil }

func (f *fields) get(k string) ast.Node {
	if mv := f.kv[k]; mv != nil {
		return yamlnode.Unwrap(mv.Value)
	}
	return nil
}

// pairs returns a mapping's key/value pairs; ok is false (and a problem
// reported) when n is not a mapping. Null is an empty mapping.
func (ps *parser) pairs(n ast.Node, what string) ([]*ast.MappingValueNode, bool) {
	switch m := yamlnode.Unwrap(n).(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	case *ast.AliasNode:
		ps.errorf(n, "%s: YAML aliases (*name) are not supported in policy files; write the value out", what)
	default:
		ps.errorf(n, "%s must be a mapping, not %s", what, yamlnode.Describe(n))
	}
	return nil, false
}

// mapping checks that n is a mapping with only allowed keys.
func (ps *parser) mapping(n ast.Node, what string, allowed []string) *fields {
	pairs, ok := ps.pairs(n, what)
	if !ok {
		return nil
	}
	f := &fields{at: n, kv: map[string]*ast.MappingValueNode{}}
	for _, mv := range pairs {
		if mv.Key.IsMergeKey() {
			ps.errorf(mv.Key, "%s: YAML merge keys (<<) are not supported in policy files; write the fields out", what)
			continue
		}
		k := yamlnode.KeyString(mv.Key)
		if first := f.kv[k]; first != nil {
			line, _ := yamlnode.Pos(first.Key)
			ps.errorf(mv.Key, "%s: field %q is given twice (first at line %d); keep one", what, k, line)
			continue
		}
		if !slices.Contains(allowed, k) {
			ps.errorf(mv.Key, "unknown field %q in %s; %s", k, what, yamlnode.Suggest(k, allowed, "the fields are"))
			continue
		}
		f.kv[k] = mv
	}
	return f
}

func (ps *parser) scalar(n ast.Node, what string) (string, bool) {
	switch m := yamlnode.Unwrap(n).(type) {
	case *ast.StringNode:
		return m.Value, true
	case *ast.LiteralNode:
		return m.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return m.GetToken().Value, true
	case *ast.NullNode, nil:
		ps.errorf(n, "%s is empty; write a value", what)
	default:
		ps.errorf(n, "%s must be a single value, not %s", what, yamlnode.Describe(n))
	}
	return "", false
}

func (ps *parser) oneOf(n ast.Node, what string, valid []string) (string, bool) {
	s, ok := ps.scalar(n, what)
	if !ok {
		return "", false
	}
	if !slices.Contains(valid, s) {
		ps.errorf(n, "%s: %q is not allowed; %s", what, s, yamlnode.Suggest(s, valid, "write one of"))
		return "", false
	}
	return s, true
}

func (ps *parser) boolean(n ast.Node, what string) (bool, bool) {
	if b, ok := yamlnode.Unwrap(n).(*ast.BoolNode); ok {
		return b.Value, true
	}
	ps.errorf(n, "%s must be true or false, not %s", what, yamlnode.Describe(n))
	return false, false
}

func (ps *parser) integer(n ast.Node, what string, lo, hi int) (int, bool) {
	m, ok := yamlnode.Unwrap(n).(*ast.IntegerNode)
	if !ok {
		ps.errorf(n, "%s must be a whole number, not %s", what, yamlnode.Describe(n))
		return 0, false
	}
	v, err := strconv.Atoi(m.GetToken().Value)
	if err != nil || v < lo || v > hi {
		ps.errorf(n, "%s must be a whole number from %d to %d", what, lo, hi)
		return 0, false
	}
	return v, true
}

func (ps *parser) strings(n ast.Node, what string) ([]string, bool) {
	n = yamlnode.Unwrap(n)
	if yamlnode.IsNull(n) {
		return []string{}, true
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		ps.errorf(n, "%s must be a list such as [a, b], not %s", what, yamlnode.Describe(n))
		return nil, false
	}
	out := []string{}
	good := true
	for _, v := range seq.Values {
		s, ok := ps.scalar(v, what+" item")
		if !ok {
			good = false
			continue
		}
		if slices.Contains(out, s) {
			ps.errorf(v, "%s: %q is listed twice", what, s)
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// ParseDuration reads a policy duration: whole numbers with units w, d, h,
// m or s, such as 24h, 7d, 1d12h, 90m. A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if !durPattern.MatchString(s) {
		return 0, fmt.Errorf("bad duration %q; write a number and a unit such as 24h, 7d or 90m", s)
	}
	unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}
	var d time.Duration
	for _, m := range durPart.FindAllStringSubmatch(s, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("bad duration %q: too long", s)
		}
		d += time.Duration(n) * unit[m[2]]
	}
	return d, nil
}

func (ps *parser) duration(n ast.Node, what string, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := ps.scalar(n, what)
	if !ok {
		return 0, false
	}
	if _, isNum := yamlnode.Unwrap(n).(*ast.IntegerNode); isNum {
		ps.errorf(n, "%s: %s has no unit; write %sh or %sd", what, s, s, s)
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		ps.errorf(n, "%s: %v", what, err)
		return 0, false
	}
	if d < lo || d > hi {
		ps.errorf(n, "%s must be from %s to %s", what, FormatDuration(lo), FormatDuration(hi))
		return 0, false
	}
	return d, true
}

func (ps *parser) policy(f *fields, p *Policy) {
	if n := f.get("timezone"); f.has("timezone") {
		if s, ok := ps.scalar(n, "timezone"); ok {
			if location(s) == nil {
				ps.errorf(n, "timezone: unknown time zone %q; write an IANA name such as America/New_York", s)
			} else {
				p.Timezone = s
			}
		}
	}
	if f.has("consent") {
		ps.consent(f.get("consent"), p.Consent, nil)
	}
	if f.has("sms") {
		o := &Override{}
		ps.sms(f.get("sms"), o)
		if o.Purposes != nil {
			p.SMS.Purposes = o.Purposes
		}
		if o.AwarenessStages != nil {
			p.SMS.AwarenessStages = o.AwarenessStages
		}
		if o.engagementSet {
			p.SMS.Engagement = o.Engagement
		}
	}
	if f.has("quiet_hours") {
		ps.quietHours(f.get("quiet_hours"), p)
	}
	if f.has("jitter") {
		if d, ok := ps.duration(f.get("jitter"), "jitter", 0, 4*time.Hour); ok {
			p.Jitter = d
		}
	}
	if f.has("caps") {
		p.Caps = ps.caps(f.get("caps"), true)
	}
	if f.has("transactional") {
		if tf := ps.mapping(f.get("transactional"), "transactional", transactionalFields); tf != nil {
			if tf.has("bypass_caps") {
				p.Transactional.BypassCaps, _ = ps.boolean(tf.get("bypass_caps"), "transactional: bypass_caps")
			}
			if tf.has("count_when_bypassing") {
				p.Transactional.CountWhenBypassing, _ = ps.boolean(tf.get("count_when_bypassing"), "transactional: count_when_bypassing")
			}
		}
	}
	if f.has("on_cap") {
		if s, ok := ps.oneOf(f.get("on_cap"), "on_cap", onCaps); ok {
			p.OnCap = s
		}
	}
	if f.has("priorities") {
		pairs, _ := ps.pairs(f.get("priorities"), "priorities")
		for _, mv := range pairs {
			k := yamlnode.KeyString(mv.Key)
			if v, ok := ps.integer(mv.Value, "priorities: "+k, -1000, 1000); ok {
				p.Priorities[k] = v
			}
		}
	}
	if f.has("keywords") {
		ps.keywords(f.get("keywords"), &p.Keywords)
	}
	if f.has("opt_out_pause") {
		ps.optOutPause(f.get("opt_out_pause"), &p.OptOutPause)
	}
	if f.has("opt_out_notice") {
		ps.optOutNotice(f.get("opt_out_notice"), &p.OptOutNotice)
	}
	if f.has("sms_budgets") {
		pairs, _ := ps.pairs(f.get("sms_budgets"), "sms_budgets")
		for _, mv := range pairs {
			k := yamlnode.KeyString(mv.Key)
			if v, ok := ps.integer(mv.Value, "sms_budgets: "+k+" (segments per day)", 1, 100_000_000); ok {
				p.SMSBudgets[k] = v
			}
		}
	}
}

// optOutNotice reads opt_out_notice: {text: Reply STOP to opt out,
// when: first | every | never}.
func (ps *parser) optOutNotice(n ast.Node, o *OptOutNotice) {
	f := ps.mapping(n, "opt_out_notice", optOutNoticeFields)
	if f == nil {
		return
	}
	if f.has("text") {
		if s, ok := ps.scalar(f.get("text"), "opt_out_notice: text"); ok {
			if s = strings.TrimSpace(s); !strings.Contains(strings.ToUpper(s), "STOP") {
				ps.errorf(f.get("text"), "opt_out_notice: text %q does not say how to opt out; name the keyword, as in \"Reply STOP to opt out\"", s)
			} else {
				o.Text = s
			}
		}
	}
	if f.has("when") {
		if s, ok := ps.oneOf(f.get("when"), "opt_out_notice: when", noticeWhens); ok {
			o.When = s
		}
	}
}

// optOutPause reads opt_out_pause: {rate: 2%, min_sends: 200, over: 30d},
// or false to turn the automatic pause off.
func (ps *parser) optOutPause(n ast.Node, o *OptOutPause) {
	if b, ok := yamlnode.Unwrap(n).(*ast.BoolNode); ok {
		o.Off = !b.Value
		return
	}
	f := ps.mapping(n, "opt_out_pause", optOutPauseFields)
	if f == nil {
		return
	}
	if f.has("rate") {
		if s, ok := ps.scalar(f.get("rate"), "opt_out_pause: rate"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
			if strings.HasSuffix(s, "%") {
				v /= 100
			}
			if err != nil || v <= 0 || v >= 1 {
				ps.errorf(f.get("rate"), "opt_out_pause: rate %q is not a rate between 0 and 100%%; write 2%% or 0.02", s)
			} else {
				o.Rate = v
			}
		}
	}
	if f.has("min_sends") {
		if v, ok := ps.integer(f.get("min_sends"), "opt_out_pause: min_sends", 1, 10_000_000); ok {
			o.MinSends = int64(v)
		}
	}
	if f.has("over") {
		if d, ok := ps.duration(f.get("over"), "opt_out_pause: over", 24*time.Hour, 365*24*time.Hour); ok {
			o.Over = d
		}
	}
}

func (ps *parser) override(f *fields, o *Override) {
	if f.has("consent") {
		o.Consent = map[string]string{}
		ps.consent(f.get("consent"), o.Consent, o.pos)
	}
	if f.has("sms") {
		ps.sms(f.get("sms"), o)
	}
	if f.has("quiet_hours") {
		pairs, _ := ps.pairs(f.get("quiet_hours"), "quiet_hours")
		o.Quiet = map[string]Window{}
		for _, mv := range pairs {
			ch := yamlnode.KeyString(mv.Key)
			if !slices.Contains(nudge.Channels, ch) {
				ps.errorf(mv.Key, "quiet_hours: unknown channel %q; %s", ch, yamlnode.Suggest(ch, nudge.Channels, "the channels are"))
				continue
			}
			what := "quiet_hours: " + ch
			if qf := ps.mapping(mv.Value, what, tightQuietFields); qf != nil {
				if w, ok := ps.window(qf, what, true); ok {
					o.Quiet[ch] = w
					o.pos(what, mv.Key)
				}
			}
		}
	}
	if f.has("caps") {
		o.Caps = ps.caps(f.get("caps"), false)
	}
	if f.has("on_cap") {
		if s, ok := ps.oneOf(f.get("on_cap"), "on_cap", onCaps); ok {
			o.OnCap = s
		}
	}
}

func (ps *parser) consent(n ast.Node, dst map[string]string, mark func(string, ast.Node)) {
	pairs, _ := ps.pairs(n, "consent")
	for _, mv := range pairs {
		ch := yamlnode.KeyString(mv.Key)
		if !slices.Contains(nudge.Channels, ch) {
			ps.errorf(mv.Key, "consent: unknown channel %q; %s", ch, yamlnode.Suggest(ch, nudge.Channels, "the channels are"))
			continue
		}
		f := ps.mapping(mv.Value, "consent: "+ch, consentPurposes)
		if f == nil {
			continue
		}
		for _, purpose := range consentPurposes {
			if !f.has(purpose) {
				continue
			}
			what := "consent: " + ch + ": " + purpose
			req, ok := ps.oneOf(f.get(purpose), what, requirements)
			if !ok {
				continue
			}
			if ch == nudge.ChannelSMS && purpose == nudge.PurposeMarketing && req != RequireOptedIn {
				ps.errorf(f.get(purpose), "%s: marketing SMS needs opted_in consent (TCPA, express written consent); it cannot be %s", what, req)
				continue
			}
			dst[ch+"/"+purpose] = req
			if mark != nil {
				mark("consent: "+ch+"/"+purpose, f.get(purpose))
			}
		}
	}
}

func (ps *parser) sms(n ast.Node, o *Override) {
	f := ps.mapping(n, "sms", smsFields)
	if f == nil {
		return
	}
	if f.has("purposes") {
		if l, ok := ps.strings(f.get("purposes"), "sms: purposes"); ok {
			for _, s := range l {
				if !slices.Contains(DefaultSMSPurposes, s) {
					ps.errorf(f.get("purposes"), "sms: purposes: unknown purpose %q; %s", s, yamlnode.Suggest(s, DefaultSMSPurposes, "the purposes are"))
				}
			}
			o.Purposes = l
			o.pos("sms: purposes", f.get("purposes"))
		}
	}
	if f.has("awareness_stages") {
		if l, ok := ps.strings(f.get("awareness_stages"), "sms: awareness_stages"); ok {
			o.AwarenessStages = l
		}
	}
	if f.has("engagement") {
		o.engagementSet = true
		n := f.get("engagement")
		if b, ok := yamlnode.Unwrap(n).(*ast.BoolNode); ok && !b.Value || yamlnode.IsNull(n) {
			return
		}
		ef := ps.mapping(n, "sms: engagement", engagementFields)
		if ef == nil {
			return
		}
		g := &Engagement{Within: 30 * 24 * time.Hour, Events: []string{"email.opened", "email.clicked", "page.viewed"}}
		if ef.has("within") {
			g.Within, _ = ps.duration(ef.get("within"), "sms: engagement: within", time.Hour, 365*24*time.Hour)
		}
		if ef.has("events") {
			if l, ok := ps.strings(ef.get("events"), "sms: engagement: events"); ok {
				if len(l) == 0 {
					ps.errorf(ef.get("events"), "sms: engagement: events is empty; list the events that count, such as [email.opened, email.clicked, page.viewed]")
				}
				g.Events = l
			}
		}
		o.Engagement = g
		o.pos("sms: engagement", n)
	}
}

func (ps *parser) quietHours(n ast.Node, p *Policy) {
	pairs, _ := ps.pairs(n, "quiet_hours")
	for _, mv := range pairs {
		ch := yamlnode.KeyString(mv.Key)
		if !slices.Contains(nudge.Channels, ch) {
			ps.errorf(mv.Key, "quiet_hours: unknown channel %q; %s", ch, yamlnode.Suggest(ch, nudge.Channels, "the channels are"))
			continue
		}
		what := "quiet_hours: " + ch
		v := yamlnode.Unwrap(mv.Value)
		if s, ok := v.(*ast.StringNode); ok && s.Value == "none" || yamlnode.IsNull(v) {
			delete(p.Quiet, ch)
			continue
		}
		f := ps.mapping(v, what, quietFields)
		if f == nil {
			continue
		}
		q := p.Quiet[ch]
		if q == nil {
			q = &Quiet{Allow: Window{Start: 0, End: 24 * 60, Days: AllDays}, Transactional: true}
			if ch == nudge.ChannelSMS {
				q.Regions = ShippedRegions()
			}
			p.Quiet[ch] = q
		}
		if w, ok := ps.window(f, what, false); ok {
			if !f.has("allow") {
				w.Start, w.End = q.Allow.Start, q.Allow.End
			}
			q.Allow = w
		}
		if f.has("transactional") {
			q.Transactional, _ = ps.boolean(f.get("transactional"), what+": transactional")
		}
		if f.has("regions") {
			rp, _ := ps.pairs(f.get("regions"), what+": regions")
			if q.Regions == nil {
				q.Regions = map[string]Window{}
			}
			for _, rv := range rp {
				r := yamlnode.KeyString(rv.Key)
				if !regionPattern.MatchString(r) {
					ps.errorf(rv.Key, "%s: regions: bad region %q; write a country (FR) or a country and a state (US-FL) in capitals", what, r)
					continue
				}
				rf := ps.mapping(rv.Value, what+": regions: "+r, regionFields)
				if rf == nil {
					continue
				}
				if !rf.has("allow") {
					ps.errorf(rv.Key, "%s: regions: %s: allow is missing; write allow: \"09:00-20:00\"", what, r)
					continue
				}
				if w, ok := ps.window(rf, what+": regions: "+r, false); ok {
					q.Regions[r] = w
				}
			}
		}
	}
}

// window reads allow, days and closed. A missing allow is all day, unless
// required.
func (ps *parser) window(f *fields, what string, required bool) (Window, bool) {
	w := Window{Start: 0, End: 24 * 60, Days: AllDays}
	good := true
	if !f.has("allow") && required {
		ps.errorf(f.at, "%s: allow is missing; write allow: \"09:00-20:00\"", what)
		good = false
	}
	if f.has("allow") {
		n := f.get("allow")
		s, ok := ps.scalar(n, what+": allow")
		m := windowPattern.FindStringSubmatch(strings.TrimSpace(s))
		switch {
		case !ok:
			good = false
		case m == nil:
			ps.errorf(n, "%s: allow: bad window %q; write local 24-hour times in quotes, such as \"08:00-21:00\"", what, s)
			good = false
		default:
			h1, _ := strconv.Atoi(m[1])
			m1, _ := strconv.Atoi(m[2])
			h2, _ := strconv.Atoi(m[3])
			m2, _ := strconv.Atoi(m[4])
			w.Start, w.End = h1*60+m1, h2*60+m2
			if w.Start > 24*60 || w.End > 24*60 || w.Start >= w.End {
				ps.errorf(n, "%s: allow: %q must start before it ends on the same day, between 00:00 and 24:00, such as \"08:00-21:00\"", what, s)
				good = false
			}
		}
	}
	if f.has("days") {
		n := f.get("days")
		l, ok := ps.strings(n, what+": days")
		if ok {
			w.Days = 0
			for _, d := range l {
				i := slices.Index(weekdayNames, strings.ToLower(d))
				if i < 0 {
					ps.errorf(n, "%s: days: unknown day %q; %s", what, d, yamlnode.Suggest(d, weekdayNames, "the days are"))
					good = false
					continue
				}
				w.Days |= 1 << i
			}
			if w.Days == 0 && good {
				ps.errorf(n, "%s: days is empty; list the days messages may go, such as [mon, tue, wed, thu, fri]", what)
				good = false
			}
		}
	}
	if f.has("closed") {
		n := f.get("closed")
		if l, ok := ps.strings(n, what+": closed"); ok {
			for _, d := range l {
				if _, err := time.Parse("2006-01-02", d); err != nil || !datePattern.MatchString(d) {
					ps.errorf(n, "%s: closed: bad date %q; write dates as 2026-07-04", what, d)
					good = false
				}
			}
			w.Dates = l
		}
	}
	return w, good
}

func (ps *parser) caps(n ast.Node, workspace bool) []Cap {
	n = yamlnode.Unwrap(n)
	out := []Cap{}
	if yamlnode.IsNull(n) {
		return out
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		ps.errorf(n, "caps must be a list of caps such as - {channel: sms, limit: 1, per: 24h}, not %s", yamlnode.Describe(n))
		return out
	}
	for i, v := range seq.Values {
		what := fmt.Sprintf("caps[%d]", i)
		f := ps.mapping(v, what, capFields)
		if f == nil {
			continue
		}
		line, col := yamlnode.Pos(v)
		c := Cap{line: line, col: col}
		good := true
		if !f.has("channel") {
			ps.errorf(v, "%s: channel is missing; write channel: sms or channel: email", what)
			good = false
		} else if s, ok := ps.oneOf(f.get("channel"), what+": channel", nudge.Channels); ok {
			c.Channel = s
		} else {
			good = false
		}
		if !f.has("limit") {
			ps.errorf(v, "%s: limit is missing; write limit: 1", what)
			good = false
		} else if l, ok := ps.integer(f.get("limit"), what+": limit", 0, 1000); ok {
			c.Limit = l
		} else {
			good = false
		}
		switch {
		case f.has("per") && f.has("calendar_days"):
			ps.errorf(f.get("calendar_days"), "%s: per and calendar_days are both given; a cap is a rolling window (per: 24h) or calendar days (calendar_days: 1), not both", what)
			good = false
		case f.has("per"):
			c.Per, ok = ps.duration(f.get("per"), what+": per", time.Minute, 365*24*time.Hour)
			good = good && ok
		case f.has("calendar_days"):
			c.Days, ok = ps.integer(f.get("calendar_days"), what+": calendar_days", 1, 90)
			good = good && ok
		default:
			ps.errorf(v, "%s: the window is missing; write per: 24h (rolling) or calendar_days: 1 (in the contact's time zone)", what)
			good = false
		}
		if f.has("scope") {
			if s, ok := ps.oneOf(f.get("scope"), what+": scope", scopes); ok && s == ScopeJourney {
				c.Scope = ScopeJourney
			}
		}
		if f.has("region") {
			if !workspace {
				ps.errorf(f.get("region"), "%s: region: regional caps belong to the workspace policy", what)
				good = false
			} else if s, ok := ps.scalar(f.get("region"), what+": region"); ok {
				if !regionPattern.MatchString(s) {
					ps.errorf(f.get("region"), "%s: region: bad region %q; write FR or US-FL", what, s)
					good = false
				}
				c.Region = s
			}
		}
		if good {
			out = append(out, c)
		}
	}
	return out
}

func (ps *parser) keywords(n ast.Node, k *KeywordConfig) {
	f := ps.mapping(n, "keywords", keywordFields)
	if f == nil {
		return
	}
	for key, dst := range map[string]*string{"program": &k.Program, "frequency": &k.Frequency, "support": &k.Support} {
		if f.has(key) {
			if s, ok := ps.scalar(f.get(key), "keywords: "+key); ok {
				*dst = s
			}
		}
	}
	if f.has("revocation") {
		if s, ok := ps.oneOf(f.get("revocation"), "keywords: revocation", []string{"review", "opt_out"}); ok {
			k.RevocationOptOut = s == "opt_out"
		}
	}
	if f.has("languages") {
		seq, ok := yamlnode.Unwrap(f.get("languages")).(*ast.SequenceNode)
		if !ok {
			ps.errorf(f.get("languages"), "keywords: languages must be a list of languages, each with code, opt_out, opt_in, help and replies")
			return
		}
		k.Languages = nil
		for i, v := range seq.Values {
			what := fmt.Sprintf("keywords: languages[%d]", i)
			lf := ps.mapping(v, what, languageFields)
			if lf == nil {
				continue
			}
			var l Language
			if !lf.has("code") {
				ps.errorf(v, "%s: code is missing; write code: en", what)
			} else {
				l.Code, _ = ps.scalar(lf.get("code"), what+": code")
			}
			for key, dst := range map[string]*[]string{"opt_out": &l.OptOut, "opt_in": &l.OptIn, "help": &l.Help, "review_words": &l.ReviewWords, "revocations": &l.Revocations} {
				if lf.has(key) {
					*dst, _ = ps.strings(lf.get(key), what+": "+key)
				}
			}
			if len(l.OptOut) == 0 {
				ps.errorf(v, "%s: opt_out is missing or empty; every language needs opt-out keywords, such as [STOP, UNSUBSCRIBE]", what)
			}
			if !lf.has("replies") {
				ps.errorf(v, "%s: replies is missing; write replies: {opt_out: …, opt_in: …, help: …}", what)
			} else if rf := ps.mapping(lf.get("replies"), what+": replies", replyFields); rf != nil {
				for key, dst := range map[string]*string{"opt_out": &l.OptOutReply, "opt_in": &l.OptInReply, "help": &l.HelpReply} {
					if !rf.has(key) {
						ps.errorf(lf.get("replies"), "%s: replies: %s is missing", what, key)
						continue
					}
					*dst, _ = ps.scalar(rf.get(key), what+": replies: "+key)
				}
				if l.HelpReply != "" && l.Code == "en" && !strings.Contains(l.HelpReply, "Msg & data rates may apply") {
					ps.errorf(rf.get("help"), "%s: replies: help must say \"Msg & data rates may apply\" (CTIA)", what)
				}
				if h := l.HelpReply; h != "" && !strings.Contains(h, "{support}") && !strings.Contains(h, k.Support) {
					ps.errorf(rf.get("help"), "%s: replies: help must name a support contact: write {support}", what)
				}
				if h := l.HelpReply; h != "" && !strings.Contains(h, "{program}") && !strings.Contains(h, k.Program) {
					ps.errorf(rf.get("help"), "%s: replies: help must name the program: write {program}", what)
				}
			}
			k.Languages = append(k.Languages, l)
		}
	}
}
