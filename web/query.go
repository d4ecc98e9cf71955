package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// pageSize is how many rows a long list shows at once.
const pageSize = 50

// withQuery returns the request's path and query with key set to value
// (removed when value is ""): the link to another page of the same list.
func withQuery(r *http.Request, key, value string) string {
	q := r.URL.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	if len(q) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + q.Encode()
}

// dayRange reads the from and to fields (YYYY-MM-DD, both optional) as
// the UTC instants [from 00:00, the day after to 00:00). A field that is
// not a date, or a to before from, is an EINVALID naming it.
func dayRange(q url.Values) (from, to time.Time, err error) {
	day := func(name string) (time.Time, error) {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, nudge.FieldErrorf(name, "%q is not a date; write it as YYYY-MM-DD, for example 2026-03-01", v)
		}
		return t, nil
	}
	if from, err = day("from"); err != nil {
		return
	}
	if to, err = day("to"); err != nil {
		return
	}
	if !to.IsZero() {
		to = to.AddDate(0, 0, 1)
		if !from.IsZero() && !to.After(from) {
			return time.Time{}, time.Time{}, nudge.FieldErrorf("to", "%s is before from (%s)", q.Get("to"), q.Get("from"))
		}
	}
	return from, to, nil
}
