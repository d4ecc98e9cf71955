package web

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/report"
)

// endNode is the id of the graph's "completes" node, for targets "".
const endNode = ""

type gnode struct {
	id         string
	step       *journey.Step
	depth, col int
	x, y       float64
}

type gedge struct {
	from, to string
	label    string
}

const (
	nodeW, nodeH = 200.0, 64.0
	gapX, gapY   = 40.0, 70.0
	margin       = 20.0
)

// drawGraph lays a journey out in rows by breadth-first depth from its
// first step and draws it as SVG: a node per step with its kind, what it
// does and how many enrollments reached it; edges labelled with the
// branch case, split weight or wait_for outcome they stand for.
func drawGraph(j *journey.Journey, rep *report.Report) template.HTML {
	reached := map[string]int64{}
	for _, f := range rep.Funnel {
		reached[f.StepID] = f.Reached
	}
	nodes := map[string]*gnode{}
	var rows [][]*gnode
	var edges []gedge
	place := func(id string, s *journey.Step, depth int) *gnode {
		for len(rows) <= depth {
			rows = append(rows, nil)
		}
		n := &gnode{id: id, step: s, depth: depth, col: len(rows[depth])}
		rows[depth] = append(rows[depth], n)
		nodes[id] = n
		return n
	}
	if first := j.First(); first != nil {
		queue := []*gnode{place(first.ID, first, 0)}
		var ends []int // depths wanting the end node
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, t := range n.step.Targets() {
				edges = append(edges, gedge{from: n.id, to: t, label: edgeLabel(n.step, t)})
				if t == endNode {
					ends = append(ends, n.depth+1)
					continue
				}
				if nodes[t] == nil {
					if s := j.Step(t); s != nil {
						queue = append(queue, place(t, s, n.depth+1))
					}
				}
			}
		}
		if len(ends) > 0 {
			d := 0
			for _, e := range ends {
				d = max(d, e)
			}
			d = max(d, len(rows))
			place(endNode, nil, d)
		}
	}
	widest := 1
	for _, r := range rows {
		widest = max(widest, len(r))
	}
	width := margin*2 + float64(widest)*nodeW + float64(widest-1)*gapX + 120 // room for back edges
	height := margin*2 + float64(len(rows))*nodeH + float64(max(len(rows)-1, 0))*gapY
	for _, r := range rows {
		rowW := float64(len(r))*nodeW + float64(len(r)-1)*gapX
		x0 := margin + (float64(widest)*nodeW+float64(widest-1)*gapX-rowW)/2
		for _, n := range r {
			n.x = x0 + float64(n.col)*(nodeW+gapX)
			n.y = margin + float64(n.depth)*(nodeH+gapY)
		}
	}

	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="graph" viewBox="0 0 %.0f %.0f" width="%.0f" role="img" aria-label="%s, drawn as a graph of its steps" xmlns="http://www.w3.org/2000/svg">`, width, height, width, esc(j.Name))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`)
	counts := edgeCounts(edges, rep)
	for _, e := range edges {
		a, z := nodes[e.from], nodes[e.to]
		if a == nil || z == nil {
			continue
		}
		x1, y1 := a.x+nodeW/2, a.y+nodeH
		x2, y2 := z.x+nodeW/2, z.y
		var d string
		lx, ly := (x1+x2)/2, (y1+y2)/2
		if z.depth <= a.depth { // a loop back: go round the right-hand side
			rx := width - 40
			d = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", a.x+nodeW, a.y+nodeH/2, rx, a.y+nodeH/2, rx, z.y+nodeH/2, z.x+nodeW, z.y+nodeH/2)
			lx, ly = rx-10, (a.y+z.y)/2+nodeH/2
		} else {
			d = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, x1, y1+gapY/2, x2, y2-gapY/2, x2, y2)
		}
		n, known := counts[e.from+"\x00"+e.to]
		fmt.Fprintf(&b, `<g class="edge" data-from="%s" data-to="%s"`, esc(e.from), esc(e.to))
		if known {
			fmt.Fprintf(&b, ` data-count="%d"`, n)
		}
		fmt.Fprintf(&b, `><path d="%s" marker-end="url(#arrow)"/>`, d)
		label, title := e.label, e.label
		if known {
			label, title = fmt.Sprint(n), fmt.Sprintf("%d enrollments", n)
			if e.label != "" {
				label, title = fmt.Sprintf("%d · %s", n, e.label), fmt.Sprintf("%s: %d enrollments", e.label, n)
			}
		}
		if label != "" {
			fmt.Fprintf(&b, `<text class="edge-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, lx, ly+4, esc(truncate(label, 34)))
			fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
		}
		b.WriteString(`</g>`)
	}
	for _, r := range rows {
		for _, n := range r {
			drawNode(&b, n, reached)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above went through esc
}

func drawNode(b *strings.Builder, n *gnode, reached map[string]int64) {
	esc := template.HTMLEscapeString
	if n.step == nil {
		fmt.Fprintf(b, `<g class="node end" data-step=""><title>The enrollment completes</title><rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="32"/><text x="%.1f" y="%.1f" text-anchor="middle" class="node-title">completes</text></g>`,
			n.x, n.y, nodeW, nodeH, n.x+nodeW/2, n.y+nodeH/2+5)
		return
	}
	s := n.step
	kind := string(s.Kind)
	what := stepSummary(s)
	count := reached[s.ID]
	fmt.Fprintf(b, `<g class="node kind-%s" data-step="%s" data-reached="%d" tabindex="0" role="img"><title>%s (%s): %s; %d reached</title>`,
		esc(kind), esc(s.ID), count, esc(s.ID), esc(kind), esc(what), count)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="6"/>`, n.x, n.y, nodeW, nodeH)
	badge := strings.ToUpper(strings.ReplaceAll(kind, "_", " "))
	if s.Kind == journey.KindSMS {
		badge = "✆ SMS · " + string(s.SMS.Purpose)
	}
	fmt.Fprintf(b, `<text class="node-kind" x="%.1f" y="%.1f">%s</text>`, n.x+10, n.y+16, esc(badge))
	fmt.Fprintf(b, `<text class="node-title" x="%.1f" y="%.1f">%s</text>`, n.x+10, n.y+35, esc(truncate(s.ID, 22)))
	fmt.Fprintf(b, `<text class="node-what" x="%.1f" y="%.1f">%s</text>`, n.x+10, n.y+53, esc(truncate(what, 30)))
	fmt.Fprintf(b, `<text class="node-count" x="%.1f" y="%.1f" text-anchor="end">%d</text>`, n.x+nodeW-10, n.y+35, count)
	b.WriteString(`</g>`)
}

// stepSummary says in a few words what a step does.
func stepSummary(s *journey.Step) string {
	switch s.Kind {
	case journey.KindEmail:
		return "template " + s.Email.Template
	case journey.KindSMS:
		return "template " + s.SMS.Template
	case journey.KindWait:
		switch {
		case s.Wait.For > 0:
			return "for " + s.Wait.For.String()
		case s.Wait.Until != nil:
			return "until " + s.Wait.Until.Source
		case s.Wait.UntilLocal != nil:
			return "until " + s.Wait.UntilLocal.String() + " local"
		}
	case journey.KindWaitFor:
		return s.WaitFor.Event + " up to " + s.WaitFor.Timeout.String()
	case journey.KindBranch:
		return fmt.Sprintf("%d case(s) and else", len(s.Branch.Cases))
	case journey.KindSplit:
		return fmt.Sprintf("%d paths", len(s.Split))
	case journey.KindUpdateContact:
		keys := make([]string, 0, len(s.UpdateContact.Set))
		for k := range s.UpdateContact.Set {
			keys = append(keys, k)
		}
		return "set " + strings.Join(keys, ", ")
	case journey.KindWebhook:
		return s.Webhook.URL
	case journey.KindExit:
		return "ends the enrollment"
	}
	return ""
}

// edgeLabel names the edge from s to its target t.
func edgeLabel(s *journey.Step, t string) string {
	switch s.Kind {
	case journey.KindBranch:
		var conds []string
		for _, c := range s.Branch.Cases {
			if c.Then == t {
				conds = append(conds, "if "+c.If.Source)
			}
		}
		if s.Branch.Else == t {
			conds = append(conds, "else")
		}
		return strings.Join(conds, " or ")
	case journey.KindSplit:
		w := 0
		for _, p := range s.Split {
			if p.Next == t {
				w += p.Weight
			}
		}
		return fmt.Sprintf("%d%%", w)
	case journey.KindWaitFor:
		var ls []string
		if s.WaitFor.OnEvent == t {
			ls = append(ls, "on "+s.WaitFor.Event)
		}
		if s.WaitFor.OnTimeout == t {
			ls = append(ls, "timeout "+s.WaitFor.Timeout.String())
		}
		return strings.Join(ls, " or ")
	}
	return ""
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
