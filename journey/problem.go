package journey

import (
	"fmt"
	"strings"

	"github.com/nudge/nudge"
)

// Problem is one thing wrong in a journey file, at a 1-based line and column.
type Problem struct {
	File      string
	Line, Col int
	Message   string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// ValidationError is every problem Parse found in a file, in file order.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line: "webinar.yaml:14:7: unknown step …".
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
