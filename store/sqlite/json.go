package sqlite

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// encodeDetails encodes a decision's or a message's details as
// json.Marshal does, byte for byte, or nil for a nil map. Every transition
// writes details: json.Marshal reflects over each value and sorts the keys
// through reflect.Values, and that cost (and its garbage) showed in the
// engine's commit profile. The types details are built of are written
// here; any other value goes through json.Marshal.
func encodeDetails(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := appendJSONMap(make([]byte, 0, 256), m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

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
	case []any:
		if v != nil {
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
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
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
