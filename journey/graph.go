package journey

import (
	"slices"
	"strings"
)

// checkGraph reports unreachable steps and loops that could run without
// ever waiting.
func (p *parser) checkGraph() {
	if len(p.steps) == 0 {
		return
	}
	// With two steps of one id, the graph is not what the author meant:
	// report the duplicate alone.
	for _, s := range p.steps {
		if p.byID[s.ID] != s {
			return
		}
	}
	// Reachability from the first step.
	seen := map[*Step]bool{p.steps[0]: true}
	queue := []*Step{p.steps[0]}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range s.Targets() {
			if n := p.byID[t]; n != nil && !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range p.steps {
		if !seen[s] && s.ID != "" {
			p.errAt(s.Line, s.Col, "step %q is unreachable: no step leads to it; point a next, then, else, on_event, on_timeout or split at it, or remove it", s.ID)
		}
	}

	// Loops without a wait: cycles in the graph of the steps that do not
	// wait (edges out of wait and wait_for steps are left out).
	for _, scc := range p.sccs() {
		first := scc[0]
		path := p.cyclePath(first, scc)
		if path == nil {
			continue
		}
		p.errAt(first.Line, first.Col, "loop without a wait: %s; a contact would go round it at once, without end: add a wait step to the loop", strings.Join(path, " → "))
	}
}

// edges are the non-waiting out-edges of s.
func (p *parser) edges(s *Step) []*Step {
	if s.Waits() {
		return nil
	}
	var out []*Step
	for _, t := range s.Targets() {
		if n := p.byID[t]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// sccs returns the strongly connected components of the non-waiting graph
// that hold a cycle, each sorted in file order, in file order (Tarjan).
func (p *parser) sccs() [][]*Step {
	order := map[*Step]int{}
	for i, s := range p.steps {
		order[s] = i
	}
	index := map[*Step]int{}
	low := map[*Step]int{}
	on := map[*Step]bool{}
	var stack []*Step
	var out [][]*Step
	next := 0
	var visit func(s *Step)
	visit = func(s *Step) {
		index[s], low[s] = next, next
		next++
		stack = append(stack, s)
		on[s] = true
		for _, t := range p.edges(s) {
			if _, ok := index[t]; !ok {
				visit(t)
				low[s] = min(low[s], low[t])
			} else if on[t] {
				low[s] = min(low[s], index[t])
			}
		}
		if low[s] != index[s] {
			return
		}
		var comp []*Step
		for {
			t := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			on[t] = false
			comp = append(comp, t)
			if t == s {
				break
			}
		}
		if len(comp) > 1 || slices.Contains(p.edges(s), s) {
			slices.SortFunc(comp, func(a, b *Step) int { return order[a] - order[b] })
			out = append(out, comp)
		}
	}
	for _, s := range p.steps {
		if _, ok := index[s]; !ok {
			visit(s)
		}
	}
	slices.SortFunc(out, func(a, b []*Step) int { return order[a[0]] - order[b[0]] })
	return out
}

// cyclePath is a shortest cycle from first back to itself within comp, as
// step ids ending with first's id again.
func (p *parser) cyclePath(first *Step, comp []*Step) []string {
	in := map[*Step]bool{}
	for _, s := range comp {
		in[s] = true
	}
	prev := map[*Step]*Step{}
	queue := []*Step{first}
	visited := map[*Step]bool{}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range p.edges(s) {
			if !in[t] {
				continue
			}
			if t == first {
				path := []string{first.ID}
				for c := s; c != first; c = prev[c] {
					path = append(path, c.ID)
				}
				path = append(path, first.ID)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if !visited[t] {
				visited[t] = true
				prev[t] = s
				queue = append(queue, t)
			}
		}
	}
	return nil
}
