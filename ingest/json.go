package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
)

// DecodeObject decodes a JSON object whose numbers become int64 (integral
// values) or float64 (others), the form every map this package returns uses.
// Malformed JSON is an EINVALID *nudge.Error giving the line, column and byte
// offset where the decoder stopped. The API uses it for PATCH and PUT bodies
// before handing them to ContactNormalizer.Patch or Contact.
func DecodeObject(body []byte) (map[string]any, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if _, err := convertInPlace(m, ""); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeObject decodes body, which must hold exactly one JSON object. Numbers
// out of float64's range are left as json.Number for convertInPlace to report.
func decodeObject(body []byte) (map[string]any, error) {
	if err := checkTopObject(body); err != nil {
		return nil, err
	}
	return decodeValid(body)
}

// checkTopObject validates body as JSON and checks that it is an object,
// so that decoding errors name a position and the wrong kind by name.
func checkTopObject(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nudge.Errorf(nudge.EINVALID, "empty body: expected a JSON object")
	}
	if !json.Valid(body) {
		// Unmarshal into a RawMessage only scans, and its SyntaxError has the offset.
		var raw json.RawMessage
		return jsonError(body, json.Unmarshal(body, &raw))
	}
	if k := rawKind(trimmed); k != "object" {
		return nudge.Errorf(nudge.EINVALID, "expected a JSON object, got %s", k)
	}
	return nil
}

// jsonError turns a decoding error into an EINVALID *nudge.Error with the
// position where the decoder stopped.
func jsonError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg := strings.TrimPrefix(se.Error(), "json: ")
		off := se.Offset
		if strings.HasPrefix(msg, "invalid character") {
			off-- // Offset counts the offending byte; point at it
		}
		return nudge.Errorf(nudge.EINVALID, "malformed JSON at %s: %s", position(body, off), msg)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nudge.Errorf(nudge.EINVALID, "malformed JSON at %s: unexpected %s", position(body, te.Offset), te.Value)
	}
	if err == nil {
		return nudge.Errorf(nudge.EINVALID, "malformed JSON")
	}
	return nudge.Errorf(nudge.EINVALID, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// position describes a byte offset of body as "line L, column C (byte B)";
// lines and columns count from 1 and columns in bytes, B from 0.
func position(body []byte, off int64) string {
	off = min(max(off, 0), int64(len(body)))
	before := body[:off]
	line := 1 + bytes.Count(before, []byte{'\n'})
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d (byte %d)", line, col, off)
}

// rawKind names the JSON kind of a raw value by its first byte.
func rawKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// kind names the JSON kind of a decoded value, for "expected X, got Y".
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64, int64, int, float32, int32, uint64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// typeError is the "expected X, got Y" error every type check returns.
func typeError(field, want string, v any) error {
	return nudge.FieldErrorf(field, "expected %s, got %s", want, kind(v))
}

// join makes a JSON path: join("properties", "price") is "properties.price",
// join("", "price") is "price".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// maxExactInt is the largest integer a float64 holds exactly (2^53).
const maxExactInt = 1 << 53

// convertNumber turns a JSON number into int64 when it is integral and fits,
// else float64, so that 3, 3.0 and 3e0 are all int64(3): JSON does not
// distinguish them and neither should a condition comparing them.
func convertNumber(n json.Number, path string) (any, error) {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, nudge.FieldErrorf(path, "number %s is out of range", truncate(s, 40))
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
		return int64(f), nil
	}
	return f, nil
}

// convertValue returns a copy of v with every json.Number converted by
// convertNumber. The input is never modified: callers may hand in maps they
// still use.
func convertValue(v any, path string) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return convertNumber(v, path)
	case map[string]any:
		return convertObject(v, path)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			c, err := convertValue(x, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case nil, string, bool, int64, float64:
		return v, nil
	case int:
		return int64(v), nil
	case float32:
		return float64(v), nil
	}
	return nil, nudge.FieldErrorf(path, "unsupported value of type %T", v)
}

// convertObject is convertValue for an object.
func convertObject(m map[string]any, path string) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		c, err := convertValue(x, join(path, k))
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Do not cut a UTF-8 sequence in half.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// convertInPlace is convertValue for values this package decoded itself and
// owns: json.Numbers are replaced inside the maps and slices instead of
// copying them, which halves the allocations of a batch.
func convertInPlace(v any, path string) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return convertNumber(v, path)
	case map[string]any:
		for k, x := range v {
			switch x.(type) {
			case json.Number, map[string]any, []any:
				c, err := convertInPlace(x, join(path, k))
				if err != nil {
					return nil, err
				}
				v[k] = c
			}
		}
		return v, nil
	case []any:
		for i, x := range v {
			switch x.(type) {
			case json.Number, map[string]any, []any:
				c, err := convertInPlace(x, path+"["+strconv.Itoa(i)+"]")
				if err != nil {
					return nil, err
				}
				v[i] = c
			}
		}
		return v, nil
	}
	return v, nil
}

// The functions below walk JSON already checked by json.Valid, to split a
// batch into its items without decoding it: encoding/json would scan every
// item twice more just to hand back the raw bytes.

// skipSpaceAt returns the index of the first non-space byte at or after i.
func skipSpaceAt(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		}
		break
	}
	return i
}

// skipValue returns the index just after the JSON value that starts at i.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) { // a number or a literal
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}

// skipString returns the index just after the string that starts at i.
func skipString(data []byte, i int) int {
	for i++; i < len(data); {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return len(data)
		}
		i += j
		// The quote ends the string unless an odd run of backslashes escapes it.
		n := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
	return len(data)
}

// objectMembers calls f with each member of the valid JSON object obj, in
// order (a repeated key is seen twice: callers keep the last, as
// encoding/json does).
func objectMembers(obj []byte, f func(key string, raw []byte)) {
	i := skipSpaceAt(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipSpaceAt(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		rawKey := obj[i:end]
		var key string
		if bytes.IndexByte(rawKey, '\\') >= 0 {
			json.Unmarshal(rawKey, &key) // valid: cannot fail
		} else {
			key = string(rawKey[1 : len(rawKey)-1])
		}
		i = skipSpaceAt(obj, end)
		i = skipSpaceAt(obj, i+1) // the colon
		end = skipValue(obj, i)
		f(key, obj[i:end])
		i = skipSpaceAt(obj, end)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpaceAt(obj, i+1)
		}
	}
}

// arrayElements returns the raw elements of the valid JSON array arr.
func arrayElements(arr []byte) [][]byte {
	i := skipSpaceAt(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil
	}
	var out [][]byte
	i = skipSpaceAt(arr, i+1)
	for i < len(arr) && arr[i] != ']' {
		end := skipValue(arr, i)
		if end == i { // cannot happen with valid JSON; never loop forever
			break
		}
		out = append(out, arr[i:end])
		i = skipSpaceAt(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpaceAt(arr, i+1)
		}
	}
	return out
}
