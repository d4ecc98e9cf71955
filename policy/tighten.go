package policy

import (
	"fmt"
	"slices"

	"github.com/goccy/go-yaml/ast"

	"github.com/nudge/nudge/internal/yamlnode"
)

// Override is what a journey or a step says about the policy: it can only
// tighten the workspace's (require opted_in, allow fewer SMS purposes, add
// awareness stages, require engagement sooner, narrow quiet hours, add
// caps), never loosen it. ParseOverride reads one from YAML.
type Override struct {
	File string // for problems; set by ParseOverride

	// Consent as in Policy.Consent; only RequireOptedIn tightens.
	Consent map[string]string
	// Purposes, when not nil, narrows the SMS purposes allowed.
	Purposes []string
	// AwarenessStages are added to the workspace's.
	AwarenessStages []string
	// Engagement requires engagement (sooner, or from fewer events).
	Engagement    *Engagement
	engagementSet bool
	// Quiet holds a narrower window per channel.
	Quiet map[string]Window
	// Caps are added to the workspace's.
	Caps []Cap
	// OnCap chooses skip or defer when capped.
	OnCap string

	where map[string][2]int
}

func (o *Override) pos(what string, n ast.Node) {
	if o.where == nil {
		o.where = map[string][2]int{}
	}
	l, c := yamlnode.Pos(n)
	o.where[what] = [2]int{l, c}
}

// Tighten returns the policy narrowed by o, for a journey or a step (who
// names it in problems: "journey webinar"). A field of o that would loosen
// the policy is a problem; Tighten reports all of them in a
// *ValidationError and returns no policy. p is not changed.
func (p *Policy) Tighten(o *Override, who string) (*Policy, error) {
	if o == nil {
		return p, nil
	}
	t := p.clone()
	var problems []Problem
	bad := func(what string, line, col int, format string, args ...any) {
		if line == 0 && o.where != nil {
			line, col = o.where[what][0], o.where[what][1]
		}
		msg := fmt.Sprintf(format, args...) + "; " + who + " can only tighten the workspace policy, never loosen it"
		problems = append(problems, Problem{File: o.File, Line: line, Col: col, Message: what + ": " + msg})
	}
	for _, k := range sortedKeys(o.Consent) {
		v, cur := o.Consent[k], p.Consent[k]
		if cur == "" {
			cur = RequireOptedIn
		}
		if v == RequireNotOptedOut && cur == RequireOptedIn {
			bad("consent: "+k, 0, 0, "%s loosens the workspace's %s", v, cur)
			continue
		}
		t.Consent[k] = v
	}
	if o.Purposes != nil {
		for _, s := range o.Purposes {
			if !slices.Contains(p.SMS.Purposes, s) {
				bad("sms: purposes", 0, 0, "purpose %q is not allowed by the workspace (allowed: %v)", s, p.SMS.Purposes)
			}
		}
		t.SMS.Purposes = slices.Clone(o.Purposes)
	}
	for _, s := range o.AwarenessStages {
		if !slices.Contains(t.SMS.AwarenessStages, s) {
			t.SMS.AwarenessStages = append(t.SMS.AwarenessStages, s)
		}
	}
	if o.engagementSet || o.Engagement != nil {
		cur := p.SMS.Engagement
		switch g := o.Engagement; {
		case g == nil && cur != nil:
			bad("sms: engagement", 0, 0, "turning the engagement requirement off loosens the workspace's (within %s)", FormatDuration(cur.Within))
		case g != nil && cur != nil && g.Within > cur.Within:
			bad("sms: engagement", 0, 0, "within %s loosens the workspace's %s", FormatDuration(g.Within), FormatDuration(cur.Within))
		case g != nil && cur != nil && slices.ContainsFunc(g.Events, func(e string) bool { return !slices.Contains(cur.Events, e) }):
			bad("sms: engagement", 0, 0, "events %v count more than the workspace's %v", g.Events, cur.Events)
		case g != nil:
			gg := *g
			gg.Events = slices.Clone(g.Events)
			t.SMS.Engagement = &gg
		}
	}
	for _, ch := range sortedKeys(o.Quiet) {
		w := o.Quiet[ch]
		q := t.Quiet[ch]
		if q == nil {
			q = &Quiet{Allow: Window{Start: 0, End: 24 * 60, Days: AllDays}, Transactional: true}
			t.Quiet[ch] = q
		}
		if w.Start < q.Allow.Start || w.End > q.Allow.End || w.Days&^q.Allow.Days != 0 {
			bad("quiet_hours: "+ch, 0, 0, "%s is wider than the workspace's %s", w, q.Allow)
			continue
		}
		q.Tight = append(q.Tight, w)
	}
	for _, c := range o.Caps {
		for _, cur := range p.Caps {
			if cur.Channel == c.Channel && cur.Scope == c.Scope && cur.Region == "" && cur.Per == c.Per && cur.Days == c.Days && c.Limit > cur.Limit {
				bad("caps", c.line, c.col, "%s loosens the workspace's %s", c, cur)
			}
		}
		c.origin = who
		t.Caps = append(t.Caps, c)
	}
	if o.OnCap != "" {
		t.OnCap = o.OnCap
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, &ValidationError{Problems: problems}
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
