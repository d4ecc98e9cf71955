package sqlite

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// encodeDetails must store what json.Marshal would: the stored text of
// details does not depend on which encoder wrote it.
func TestEncodeDetailsMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 3, 2, 16, 4, 5, 120000000, time.UTC)
	for name, m := range map[string]map[string]any{
		"empty": {},
		"policy": {"zone": "America/Chicago", "zone_source": "phone", "local_time": at.Format(time.RFC3339),
			"zones": []string{"America/Chicago", "America/Denver"}, "transactional": true, "until": at,
			"consent": map[string]any{"channel": "sms", "status": "opted_in", "updated_at": at, "entry_id": int64(42)},
			"engaged": map[string]any{"event": "click", "at": at.In(time.FixedZone("x", -5*3600-30*60))}},
		"escapes": {"html": "<a href=\"x\">&</a>", "ctl": "\x00\x01\b\f\n\r\t\x1f\x7f", "bad": "a\xffb\xc3",
			"seps": "\u2028\u2029", "uni": "héllo, 世界 🙂", "back\\slash": `"q"`},
		"numbers": {"int": 7, "neg": int64(-3), "float": 1.5, "big": 1e21, "small": 1e-7, "u": uint8(3), "nan-free": math.MaxInt64},
		"nested": {"list": []any{"a", 1, true, nil, map[string]any{"z": 1, "a": []string{}}}, "nil": nil,
			"nilmap": map[string]any(nil), "nilslice": []string(nil), "strmap": map[string]string{"b": "2", "a": "1"},
			"struct": struct{ A int }{1}},
		"times": {"zero": time.Time{}, "nanos": at.Add(7), "offset": at.In(time.FixedZone("y", 3600+1))},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeDetails(m)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("encodeDetails:\n got %s\nwant %s", got, want)
			}
		})
	}
	for name, m := range map[string]map[string]any{
		"year 10000":  {"at": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"a day ahead": {"at": at.In(time.FixedZone("z", 24*3600))},
		"a channel":   {"c": make(chan int)},
		"NaN":         {"f": math.NaN()},
	} {
		if _, err := encodeDetails(m); err == nil {
			t.Errorf("encodeDetails of %s: no error; json.Marshal refuses it", name)
		}
	}
	if got, err := encodeDetails(nil); got != nil || err != nil {
		t.Errorf("encodeDetails(nil) = %v, %v; want nil, nil", got, err)
	}
}
