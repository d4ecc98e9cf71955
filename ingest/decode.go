package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// decoder decodes JSON that json.Valid has accepted into the values of
// map[string]any, with numbers already int64 or float64 (see convertNumber).
// encoding/json does the same work through reflection at a third of the
// speed, and a batch is decoded on every ingest request. Errors and their
// positions still come from encoding/json: nothing here runs on invalid
// input. Integers too long for an int64 and numbers out of float64's range
// are left as json.Number, for idString to keep the digits and for
// convertInPlace to convert or report with its path. FuzzDecodeObject checks
// that the two decoders agree.
type decoder struct {
	data []byte
	str  string // data as a string: plain strings are slices of it, one allocation for all
	i    int
}

// decodeValid decodes a JSON object already known to be valid.
func decodeValid(raw []byte) (map[string]any, error) {
	d := decoder{data: raw, str: string(raw)}
	d.space()
	if d.peek() != '{' {
		return nil, jsonError(raw, json.Unmarshal(raw, new(map[string]any)))
	}
	return d.object(), nil
}

func (d *decoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
			continue
		}
		return
	}
}

func (d *decoder) value() any {
	d.space()
	switch d.peek() {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.string()
	case 't':
		d.i += len("true")
		return true
	case 'f':
		d.i += len("false")
		return false
	case 'n':
		d.i += len("null")
		return nil
	}
	return d.number()
}

func (d *decoder) object() map[string]any {
	m := map[string]any{}
	d.i++ // {
	for {
		d.space()
		if d.peek() != '"' { // '}' (or the end: valid input never gets there)
			d.i++
			return m
		}
		k := d.string()
		d.space()
		d.i++ // :
		m[k] = d.value()
		d.space()
		if d.peek() == ',' {
			d.i++
		}
	}
}

func (d *decoder) array() []any {
	a := []any{}
	d.i++ // [
	for {
		d.space()
		if c := d.peek(); c == ']' || c == 0 {
			d.i++
			return a
		}
		a = append(a, d.value())
		d.space()
		if d.peek() == ',' {
			d.i++
		}
	}
}

// string decodes a string. Plain ones (no escapes, valid UTF-8) are copied
// as they are; the others go through encoding/json, which unescapes them and
// replaces invalid UTF-8 the way the rest of Go does.
func (d *decoder) string() string {
	start := d.i
	d.i = skipString(d.data, start)
	if d.i-start < 2 {
		return ""
	}
	s := d.data[start+1 : d.i-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return d.str[start+1 : d.i-1]
	}
	return d.slowString(start)
}

func (d *decoder) slowString(start int) string {
	var s string
	json.Unmarshal(d.data[start:d.i], &s) // valid: cannot fail
	return s
}

// number decodes a number as convertNumber would, without its allocations.
func (d *decoder) number() any {
	start := d.i
	integer := true
	for ; d.i < len(d.data); d.i++ {
		c := d.data[d.i]
		if '0' <= c && c <= '9' || c == '-' {
			continue
		}
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			integer = false
			continue
		}
		break
	}
	b := d.data[start:d.i]
	if integer && len(b) <= 18 { // fits an int64 whatever the digits
		var n int64
		neg := len(b) > 0 && b[0] == '-'
		if neg {
			b = b[1:]
		}
		for _, c := range b {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n
	}
	s := string(b)
	if integer {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		// Too long for an int64: keep the digits, which may be an id
		// (userId); convertInPlace makes other values float64.
		return json.Number(s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return json.Number(s) // out of range: convertInPlace reports it
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
		return int64(f)
	}
	return f
}
