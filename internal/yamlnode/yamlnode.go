// Package yamlnode holds what the strict YAML readers of journeys and
// policies share over goccy/go-yaml's syntax tree: where a node starts (for
// file:line:col errors), what kind of value it is (for "expected a list,
// got a text value"), and a suggestion for a misspelt field name.
package yamlnode

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Pos is where a node starts in the file (1-based). A block mapping
// starts at its first key; nil or a node without a position is 1:1.
func Pos(n ast.Node) (line, col int) {
	if n == nil {
		return 1, 1
	}
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 && !m.IsFlowStyle {
			return Pos(m.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return Pos(m.Key)
	}
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return 1, 1
	}
	return t.Position.Line, t.Position.Column
}

// Unwrap returns the value under any anchors and tags.
func Unwrap(n ast.Node) ast.Node {
	for {
		switch m := n.(type) {
		case *ast.AnchorNode:
			n = m.Value
		case *ast.TagNode:
			n = m.Value
		default:
			return n
		}
	}
}

// IsNull reports whether n is absent or null.
func IsNull(n ast.Node) bool {
	_, ok := Unwrap(n).(*ast.NullNode)
	return n == nil || ok
}

// KeyString is a mapping key's text.
func KeyString(k ast.MapKeyNode) string {
	if s, ok := Unwrap(k).(*ast.StringNode); ok {
		return s.Value
	}
	if t := k.GetToken(); t != nil {
		return t.Value
	}
	return k.String()
}

// Describe names a node's kind for messages.
func Describe(n ast.Node) string {
	switch Unwrap(n).(type) {
	case nil, *ast.NullNode:
		return "empty"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.BoolNode:
		return "true/false"
	}
	return "a text value"
}

// Suggest returns `did you mean "x"?` for a candidate close to got, else
// lists the candidates after intro.
func Suggest(got string, candidates []string, intro string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := Distance(strings.ToLower(got), c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(got) > 3 {
		limit = max(2, len(got)/3)
	}
	if best != "" && bestD <= limit && bestD < len(got) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return intro + ": " + strings.Join(candidates, ", ")
}

// Distance is the Levenshtein distance between a and b, in characters.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
