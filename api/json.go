package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
)

// decodeStrict decodes body into the struct v, rejecting unknown fields, and
// turns decoding errors into EINVALID errors naming the field.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nudge.Errorf(nudge.EINVALID, "malformed JSON: unexpected data after the value")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return nudge.Errorf(nudge.EINVALID, "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return nudge.FieldErrorf(te.Field, "expected %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return nudge.Errorf(nudge.EINVALID, "the request body is empty; expected JSON")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nudge.Errorf(nudge.EINVALID, "malformed JSON: unexpected end of the body")
	}
	// DisallowUnknownFields says `json: unknown field "x"`.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if f, err := strconv.Unquote(name); err == nil {
			return nudge.FieldErrorf(f, "unknown field")
		}
	}
	return nudge.Errorf(nudge.EINVALID, "malformed JSON: %s", msg)
}

// jsonKind names a Go kind as a JSON type.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}
