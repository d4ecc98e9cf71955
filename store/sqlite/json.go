package sqlite

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nudge/nudge"
)

// appendJSONMap appends a decision's or a message's details as
// json.Marshal encodes them, byte for byte. Every transition writes
// details: json.Marshal reflects over each value and sorts the keys
// through reflect.Values, and that cost (and its garbage) showed in the
// engine's commit profile. The types details are built of are written
// here; any other value goes through json.Marshal.
func appendJSONMap(b []byte, m map[string]any) ([]byte, error) {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendJSONValue(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case time.Time:
		// Time.MarshalJSON refuses years outside [0, 9999] and zone
		// offsets of a day or more: json.Marshal below returns its error.
		_, off := v.Zone()
		if y := v.Year(); y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600 {
			b = append(b, '"')
			b = v.AppendFormat(b, time.RFC3339Nano)
			return append(b, '"'), nil
		}
	case map[string]any:
		if v != nil {
			return appendJSONMap(b, v)
		}
	case []string:
		if v != nil {
			b = append(b, '[')
			for i, s := range v {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, s)
			}
			return append(b, ']'), nil
		}
	case []map[string]any: // a cap's counted sends
		if v != nil {
			return appendJSONList(b, v)
		}
	case []any:
		if v != nil {
			return appendJSONList(b, v)
		}
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// appendJSONList appends a list of values appendJSONValue writes.
func appendJSONList[T any](b []byte, v []T) ([]byte, error) {
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONValue(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: <, > and & escaped for
// HTML, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeSteps encodes an enrollment's step records as json.Marshal does,
// byte for byte: every commit of an enrollment writes them.
func encodeSteps(steps map[string]nudge.StepRecord) (string, error) {
	var buf [16]string
	keys := buf[:0]
	for k := range steps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 64*len(keys))
	b = append(b, '{')
	for i, k := range keys {
		r := steps[k]
		// Time.MarshalJSON refuses years outside [0, 9999] and zone
		// offsets of a day or more: json.Marshal returns its error.
		_, off := r.At.Zone()
		if y := r.At.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
			enc, err := json.Marshal(steps)
			return string(enc), err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, `:{"at":"`...)
		b = r.At.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		if r.MessageID != "" {
			b = append(b, `,"message_id":`...)
			b = appendJSONString(b, r.MessageID)
		}
		if r.Visits != 0 {
			b = append(b, `,"visits":`...)
			b = strconv.AppendInt(b, int64(r.Visits), 10)
		}
		b = append(b, '}')
	}
	return string(append(b, '}')), nil
}

// decodeSteps decodes step records as encodeSteps writes them, times in
// UTC. Text of any other shape (escapes, spaces, other fields) goes
// through json.Unmarshal.
func decodeSteps(s string) (map[string]nudge.StepRecord, error) {
	if steps, ok := parseSteps(s); ok {
		return steps, nil
	}
	var steps map[string]nudge.StepRecord
	if err := json.Unmarshal([]byte(s), &steps); err != nil {
		return nil, err
	}
	for k, r := range steps {
		r.At = r.At.UTC()
		steps[k] = r
	}
	return steps, nil
}

// parseSteps is decodeSteps' fast path: ok is false for any text it does
// not expect.
func parseSteps(s string) (steps map[string]nudge.StepRecord, ok bool) {
	// plain reads a quoted string without escapes at s[i:], returning it
	// and the index after its closing quote.
	plain := func(i int) (string, int, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", 0, false
		}
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				return s[i+1 : j], j + 1, true
			case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
				return "", 0, false
			}
		}
		return "", 0, false
	}
	const (
		at     = `:{"at":`
		msg    = `,"message_id":`
		visits = `,"visits":`
	)
	if len(s) < 2 || s[0] != '{' {
		return nil, false
	}
	steps = make(map[string]nudge.StepRecord, 4)
	i := 1
	if s[i] == '}' {
		return steps, i+1 == len(s)
	}
	for {
		k, j, ok := plain(i)
		if !ok || !strings.HasPrefix(s[j:], at) {
			return nil, false
		}
		v, j, ok := plain(j + len(at))
		if !ok {
			return nil, false
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, false
		}
		r := nudge.StepRecord{At: t.UTC()}
		if strings.HasPrefix(s[j:], msg) {
			if r.MessageID, j, ok = plain(j + len(msg)); !ok {
				return nil, false
			}
		}
		if strings.HasPrefix(s[j:], visits) {
			j += len(visits)
			k := j
			for k < len(s) && s[k] >= '0' && s[k] <= '9' && k-j < 9 {
				k++
			}
			if k == j || s[j] == '0' {
				return nil, false
			}
			r.Visits, _ = strconv.Atoi(s[j:k])
			j = k
		}
		if _, dup := steps[k]; dup || j >= len(s) || s[j] != '}' {
			return nil, false
		}
		steps[k] = r
		j++
		if j >= len(s) {
			return nil, false
		}
		switch s[j] {
		case ',':
			i = j + 1
		case '}':
			return steps, j+1 == len(s)
		default:
			return nil, false
		}
	}
}

// encodeEvent encodes an enrollment's event as json.Marshal does, byte for
// byte: every commit of an enrollment writes it again.
func encodeEvent(e *nudge.Event) (string, error) {
	for _, t := range []time.Time{e.Timestamp, e.ReceivedAt} {
		// Time.MarshalJSON refuses years outside [0, 9999] and zone
		// offsets of a day or more: json.Marshal returns its error.
		if _, off := t.Zone(); t.Year() < 0 || t.Year() > 9999 || off <= -24*3600 || off >= 24*3600 {
			enc, err := json.Marshal(e)
			return string(enc), err
		}
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"message_id":`...)
	b = appendJSONString(b, e.MessageID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"contact_id":`...)
	b = appendJSONString(b, e.ContactID)
	if e.AnonymousID != "" {
		b = append(b, `,"anonymous_id":`...)
		b = appendJSONString(b, e.AnonymousID)
	}
	if e.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, e.Name)
	}
	var err error
	if len(e.Properties) > 0 {
		b = append(b, `,"properties":`...)
		if b, err = appendJSONMap(b, e.Properties); err != nil {
			return "", err
		}
	}
	if len(e.Context) > 0 {
		b = append(b, `,"context":`...)
		if b, err = appendJSONMap(b, e.Context); err != nil {
			return "", err
		}
	}
	b = append(b, `,"timestamp":"`...)
	b = e.Timestamp.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","received_at":"`...)
	b = e.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
	return string(append(b, `"}`...)), nil
}
