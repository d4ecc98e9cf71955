package journey

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond,
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// ParseDuration parses a duration as Go's time.ParseDuration does, with two
// more units: d (a day, 24h) and w (a week, 7d). Examples: 30d, 1d12h, 90m,
// 1.5h, -7d. A day is always 24 hours here; waits that must land on a local
// time of day use until_local instead.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("bad duration %q", orig)
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad duration %q", orig)
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", orig)
		}
		s = s[i:]
		j := 0
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit, ok := durationUnits[s[:j]]
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("bad duration %q: missing unit", orig)
			}
			return 0, fmt.Errorf("bad duration %q: unknown unit %q", orig, s[:j])
		}
		s = s[j:]
		total += n * float64(unit)
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("bad duration %q: too long", orig)
	}
	d := time.Duration(total)
	if neg {
		d = -d
	}
	return d, nil
}

// wordUnits maps the words people write to duration units.
var wordUnits = map[string]string{
	"w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
	"d": "d", "day": "d", "days": "d",
	"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
	"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
	"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
	"ms": "ms", "millisecond": "ms", "milliseconds": "ms",
}

// suggestDuration rewrites a human duration such as "3 days" or
// "1 day, 12 hours" to the format ("3d", "1d12h"); "" when it cannot.
func suggestDuration(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer(",", " ", " and ", " ").Replace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	fields := strings.Fields(s)
	// Split "3days" into "3" "days".
	var toks []string
	for _, f := range fields {
		i := 0
		for i < len(f) && (f[i] == '.' || f[i] >= '0' && f[i] <= '9') {
			i++
		}
		if i > 0 && i < len(f) {
			toks = append(toks, f[:i], f[i:])
		} else {
			toks = append(toks, f)
		}
	}
	if len(toks) == 0 || len(toks)%2 != 0 {
		return ""
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i := 0; i < len(toks); i += 2 {
		if _, err := strconv.ParseFloat(toks[i], 64); err != nil {
			return ""
		}
		u, ok := wordUnits[toks[i+1]]
		if !ok {
			return ""
		}
		b.WriteString(toks[i] + u)
	}
	out := b.String()
	if _, err := ParseDuration(out); err != nil {
		return ""
	}
	return out
}
