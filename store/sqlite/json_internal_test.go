package sqlite

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// encodeDetails is how EngineCommit encodes one row's details.
func encodeDetails(m map[string]any) (any, error) {
	r := newRowArgs(1, 1, time.Time{})
	if err := r.addDetails(m); err != nil {
		return nil, err
	}
	return r.done()[0], nil
}

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
			"struct": struct{ A int }{1}, "maps": []map[string]any{{"b": 1, "a": "x"}, nil, {}}, "nilmaps": []map[string]any(nil)},
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

func TestStepsCodec(t *testing.T) {
	at := time.Date(2026, 3, 2, 16, 4, 5, 120000000, time.UTC)
	for name, steps := range map[string]map[string]nudge.StepRecord{
		"empty":   {},
		"one":     {"pause": {At: at}},
		"several": {"pause": {At: at}, "hello": {At: at.Add(time.Nanosecond), MessageID: "msg_01"}, "a": {At: at.Add(-time.Hour)}},
		"escapes": {"<step \"1\">\n": {At: at, MessageID: "é\\"}, "\u2028": {At: at}},
		"zones":   {"x": {At: at.In(time.FixedZone("x", -5*3600-30*60))}, "zero": {}},
		"far":     {"y": {At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"visits":  {"hello": {At: at, MessageID: "msg_02", Visits: 12}, "pause": {At: at, Visits: 1}, "neg": {At: at, Visits: -3}},
	} {
		t.Run(name, func(t *testing.T) {
			want, wantErr := json.Marshal(steps)
			got, err := encodeSteps(steps)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("encodeSteps error %v; json.Marshal's %v", err, wantErr)
			}
			if err != nil {
				return
			}
			if got != string(want) {
				t.Errorf("encodeSteps:\n got %s\nwant %s", got, want)
			}
			back, err := decodeSteps(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(steps) {
				t.Fatalf("decodeSteps: %d records, want %d", len(back), len(steps))
			}
			for k, r := range steps {
				b, ok := back[k]
				if !ok || !b.At.Equal(r.At) || b.At.Location() != time.UTC || b.MessageID != r.MessageID {
					t.Errorf("decodeSteps: %q = %+v, want %+v in UTC", k, b, r)
				}
			}
		})
	}
	// Text of another shape decodes as json.Unmarshal would.
	for _, s := range []string{`{ "a" : {"at":"2026-03-02T16:04:05Z"} }`, `{"a":{"message_id":"m","at":"2026-03-02T16:04:05+01:00"}}`,
		`{"a":{"at":"2026-03-02T16:04:05Z"},"a":{"at":"2026-03-03T16:04:05Z"}}`, `{"a":{"at":"2026-03-02T16:04:05Z","x":1}}`} {
		var want map[string]nudge.StepRecord
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeSteps(s)
		if err != nil {
			t.Fatalf("decodeSteps(%s): %v", s, err)
		}
		for k, r := range want {
			if g := got[k]; !g.At.Equal(r.At) || g.At.Location() != time.UTC || g.MessageID != r.MessageID || len(got) != len(want) {
				t.Errorf("decodeSteps(%s) = %v, want %v", s, got, want)
			}
		}
	}
	for _, s := range []string{`{`, `{"a":}`, `{"a":{"at":"yesterday"}}`, `[]`} {
		if _, err := decodeSteps(s); err == nil {
			t.Errorf("decodeSteps(%s): no error", s)
		}
	}
}

func TestEncodeEventMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 3, 2, 16, 4, 5, 120000000, time.UTC)
	for name, e := range map[string]*nudge.Event{
		"zero":  {},
		"track": {Seq: 42, MessageID: "m<1>", Type: "track", ContactID: "c1", Name: "order \"placed\"", Timestamp: at, ReceivedAt: at.Add(time.Second)},
		"full": {Seq: 7, MessageID: "m", Type: "identify", ContactID: "c", AnonymousID: "a&b",
			Properties: map[string]any{"plan": "pro", "n": 3, "f": 2.5, "tags": []any{"x", true}},
			Context:    map[string]any{"ip": "10.0.0.1"}, Timestamp: at.In(time.FixedZone("x", 3600)), ReceivedAt: at},
		"empty maps": {Properties: map[string]any{}, Context: map[string]any{}},
		"far":        {Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			want, wantErr := json.Marshal(e)
			got, err := encodeEvent(e)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("encodeEvent error %v; json.Marshal's %v", err, wantErr)
			}
			if err == nil && got != string(want) {
				t.Errorf("encodeEvent:\n got %s\nwant %s", got, want)
			}
		})
	}
}
