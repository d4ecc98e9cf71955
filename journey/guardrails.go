package journey

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/nudge/nudge/internal/yamlnode"
	"github.com/nudge/nudge/policy"
)

// Expiry is a send step's expires: the step's message is skipped, never
// sent late, once it has passed. Exactly one of After and At is set.
type Expiry struct {
	// After is a duration from when the step is first reached (a deferral
	// does not restart it).
	After time.Duration
	// At is a timestamp expression over contact, event and journey.
	At *Expr
}

// On-cap choices of a send step (policy.OnCapSkip, policy.OnCapDefer).
const (
	OnCapSkip  = policy.OnCapSkip
	OnCapDefer = policy.OnCapDefer
)

// maxPriority bounds a journey's priority.
const maxPriority = 1000

// sendOnly are the step fields that only email and sms steps take.
var sendOnly = []string{"expires", "deadline", "on_cap", "policy"}

func (p *parser) priority(n ast.Node) int {
	const hint = "priority is a whole number from -1000 to 1000, higher wins, such as priority: 10"
	if m, ok := yamlnode.Unwrap(n).(*ast.IntegerNode); ok {
		if v, ok := intValue(m); ok && v >= -maxPriority && v <= maxPriority {
			return int(v)
		}
		p.errorf(n, "priority %s is out of range; %s", m.GetToken().Value, hint)
		return 0
	}
	p.errorf(n, "bad priority %s; %s", describeValue(n), hint)
	return 0
}

// guardrails reads a step's expires, deadline, on_cap and policy.
func (p *parser) guardrails(f *fields, s *Step, name string) {
	send := s.Kind == KindEmail || s.Kind == KindSMS
	for _, k := range sendOnly {
		if f.has(k) && !send {
			p.errorf(f.key(k), "%s is a %s step: %s applies only to email and sms steps; remove it or move it to the step that sends", name, s.Kind, k)
		}
	}
	if !send {
		return
	}
	if f.has("expires") {
		s.Expires = p.expiry(f.get("expires"), name+": expires")
	}
	if f.has("deadline") {
		s.Deadline = p.expr(f.get("deadline"), name+": deadline", timestampType)
	}
	if f.has("on_cap") {
		if v, ok := p.scalar(f.get("on_cap"), name+": on_cap"); ok {
			switch v {
			case OnCapSkip, OnCapDefer:
				s.OnCap = v
			default:
				p.errorf(f.get("on_cap"), "%s: on_cap %q; %s", name, v, yamlnode.Suggest(v, []string{OnCapSkip, OnCapDefer}, "write one of"))
			}
		}
	}
	if f.has("policy") {
		s.Policy = p.override(f.get("policy"), f.key("policy"), name)
	}
}

// expiry reads expires: a duration (2h: after the step is reached) or a
// CEL timestamp.
func (p *parser) expiry(n ast.Node, what string) *Expiry {
	s, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	switch yamlnode.Unwrap(n).(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		d, _ := p.duration(n, what) // reports the missing unit
		return &Expiry{After: d}
	}
	if d, err := ParseDuration(strings.TrimSpace(s)); err == nil {
		if d <= 0 {
			p.errorf(n, "%s must be more than zero, such as 2h", what)
		}
		return &Expiry{After: d}
	}
	if durationLike(s) {
		p.duration(n, what) // the duration's own problem, with a fix
		return nil
	}
	e := p.expr(n, what+" (a duration such as 2h, or a CEL timestamp)", timestampType)
	if e == nil {
		return nil
	}
	return &Expiry{At: e}
}

// durationLike reports whether s was meant as a duration: digits then a
// letter, nothing a CEL expression would hold.
func durationLike(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	return !strings.ContainsAny(s, "()\"'+-*/<>=!&|.")
}

// override parses a journey's or a step's policy block with
// policy.ParseOverride, on the block's own text placed at its lines and
// columns, so that its problems point into the journey file.
func (p *parser) override(n, key ast.Node, who string) *policy.Override {
	if yamlnode.IsNull(n) {
		p.errorf(key, "%s: policy is empty; write what it tightens, such as policy: {on_cap: defer} or remove it", who)
		return nil
	}
	o, err := policy.ParseOverride(p.file, p.subSource(n))
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, pr := range ve.Problems {
			p.errAt(pr.Line, pr.Col, "%s: policy: %s", who, pr.Message)
		}
		return nil
	case err != nil:
		p.errorf(n, "%s: policy: %v", who, err)
		return nil
	}
	return o
}

// subSource is the text of node n alone, with everything before it blanked
// so that its lines and columns are those of the journey file.
func (p *parser) subSource(n ast.Node) []byte {
	n = yamlnode.Unwrap(n)
	startLine, startCol := yamlnode.Pos(n)
	endLine, endCol := startLine, 0 // endCol 0: to the end of the line
	ast.Walk(visitor(func(m ast.Node) {
		if t := m.GetToken(); t != nil && t.Position != nil && t.Position.Line > endLine {
			endLine = t.Position.Line
		}
	}), n)
	if m, ok := n.(*ast.MappingNode); ok && m.IsFlowStyle && m.End != nil && m.End.Position != nil {
		endLine, endCol = m.End.Position.Line, m.End.Position.Column
	}
	if s, ok := n.(*ast.SequenceNode); ok && s.IsFlowStyle && s.End != nil && s.End.Position != nil {
		endLine, endCol = s.End.Position.Line, s.End.Position.Column
	}
	var b strings.Builder
	for l := 1; l <= endLine && l <= len(p.lines); l++ {
		line := []rune(p.lines[l-1])
		switch {
		case l < startLine:
		case l == startLine:
			from := min(max(startCol-1, 0), len(line))
			b.WriteString(strings.Repeat(" ", from))
			if l == endLine && endCol > 0 {
				b.WriteString(string(line[from:min(endCol, len(line))]))
			} else {
				b.WriteString(string(line[from:]))
			}
		case l == endLine && endCol > 0:
			b.WriteString(string(line[:min(endCol, len(line))]))
		default:
			b.WriteString(string(line))
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

type visitor func(ast.Node)

func (v visitor) Visit(n ast.Node) ast.Visitor {
	v(n)
	return v
}

// PolicyFor returns the workspace policy ws tightened by the journey's
// policy block, then by step s's (nil: the journey's only). An error
// (*policy.ValidationError) means a block would loosen ws: it was written
// for a workspace policy that has changed since.
func (j *Journey) PolicyFor(ws *policy.Policy, s *Step) (*policy.Policy, error) {
	p := ws
	if j.Policy != nil {
		t, err := p.Tighten(j.Policy, "journey "+j.ID)
		if err != nil {
			return nil, err
		}
		p = t
	}
	if s != nil && s.Policy != nil {
		t, err := p.Tighten(s.Policy, fmt.Sprintf("step %q", s.ID))
		if err != nil {
			return nil, err
		}
		p = t
	}
	return p, nil
}

// CheckPolicy reports, as a *ValidationError in file:line:col form, every
// policy block of the journey that would loosen the workspace policy ws
// rather than tighten it. Publishing a journey should call it with the
// policy in force.
func (j *Journey) CheckPolicy(ws *policy.Policy) error {
	var problems []Problem
	collect := func(err error) {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			for _, pr := range ve.Problems {
				problems = append(problems, Problem{File: j.File, Line: max(pr.Line, 1), Col: max(pr.Col, 1), Message: "policy: " + pr.Message})
			}
		} else if err != nil {
			problems = append(problems, Problem{File: j.File, Line: 1, Col: 1, Message: "policy: " + err.Error()})
		}
	}
	jp, err := j.PolicyFor(ws, nil)
	collect(err)
	if jp == nil {
		jp = ws
	}
	for _, s := range j.Steps {
		if s.Policy != nil {
			_, err := jp.Tighten(s.Policy, fmt.Sprintf("step %q", s.ID))
			collect(err)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}
