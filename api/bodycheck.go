package api

import (
	"fmt"
	"unicode/utf8"

	"github.com/nudge/nudge"
)

// maxJSONDepth is how deeply a request body's JSON may nest. Segment's
// payloads nest a few levels; thousands of levels are an attack on every
// later reader of the stored data (CEL conditions, templates, reports).
const maxJSONDepth = 64

// checkBody refuses a body that is not valid UTF-8 (JSON decoding would
// silently replace the bad bytes) or, when it is JSON, that nests objects
// and arrays deeper than maxJSONDepth, saying where.
func checkBody(b []byte, isJSON bool) error {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(b); {
		c := b[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return nudge.Errorf(nudge.EINVALID, "request body: invalid UTF-8 at %s", position(b, i))
			}
			i += n
			escaped = false
			continue
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !isJSON:
		case !inString && (c == '{' || c == '['):
			if depth++; depth > maxJSONDepth {
				return nudge.Errorf(nudge.EINVALID, "request body: JSON nested deeper than %d levels at %s", maxJSONDepth, position(b, i))
			}
		case !inString && (c == '}' || c == ']'):
			depth--
		}
		i++
	}
	return nil
}

// position names byte offset i of b as "line L, column C" (columns count
// characters).
func position(b []byte, i int) string {
	line, col := 1, 1
	for j := 0; j < i; {
		r, n := utf8.DecodeRune(b[j:])
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		j += n
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}
