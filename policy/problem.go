package policy

import (
	"fmt"
	"strings"

	"github.com/nudge/nudge"
)

// Problem is one thing wrong in a policy file (or a journey's or step's
// override), at a 1-based line and column; Line 0 when it has no place.
type Problem struct {
	File      string
	Line, Col int
	Message   string
}

func (p Problem) String() string {
	switch {
	case p.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
	case p.File != "":
		return p.File + ": " + p.Message
	}
	return p.Message
}

// ValidationError is every problem found, in file order.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line: "policy.yaml:12:5: unknown field …".
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap lets errors.As find a *nudge.Error with code EINVALID, so the API
// answers 400 with the problems as its message.
func (e *ValidationError) Unwrap() error {
	return &nudge.Error{Code: nudge.EINVALID, Message: e.Error()}
}
