package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// checkError fails unless err is a *nudge.Error with a code and a message.
func checkError(t *testing.T, what string, err error) {
	t.Helper()
	var e *nudge.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %#v (%T) is not a *nudge.Error", what, err, err)
	}
	if e.Code == "" || e.Message == "" {
		t.Fatalf("%s: error %#v has no code or no message", what, e)
	}
}

// checkItem fails unless a valid item has what the store needs.
func checkItem(t *testing.T, what string, it nudge.IngestItem) {
	t.Helper()
	ev := it.Event
	if ev == nil || ev.ContactID == "" || ev.MessageID == "" || ev.ReceivedAt.IsZero() || ev.Timestamp.IsZero() {
		t.Fatalf("%s: incomplete event %+v", what, ev)
	}
	switch ev.Type {
	case nudge.EventTrack:
		if ev.Name == "" || it.Patch != nil {
			t.Fatalf("%s: track event %+v, patch %+v", what, ev, it.Patch)
		}
	case nudge.EventIdentify:
		if it.Patch == nil || it.Patch.ID != ev.ContactID {
			t.Fatalf("%s: identify without its patch", what)
		}
	default:
		t.Fatalf("%s: event type %q", what, ev.Type)
	}
}

var batchSeeds = []string{
	`{"batch":[{"type":"track","userId":"u1","event":"e","properties":{"price":1.5}}]}`,
	`{"batch":[{"type":"identify","userId":2,"traits":{"phone":"415 555 0123","email":"a@b.co","isCustomer":"yes","x":{"y":[1,null]}}}],"sentAt":"2024-03-01T12:00:00Z","context":{"a":1}}`,
	`{"batch":[{"type":"page","userId":"u","name":"p","timestamp":"2024-03-01T12:00:00.123+0100","sentAt":"2024-03-01T12:00:01+01:00"},"x",null,[],{"type":"group"}]}`,
	`{"batch":[{"type":"track","userId":1e400,"event":"e"},{"type":"track","userId":"u","event":"e","properties":{"n":-0.0,"m":1e-400}}]}`,
	`{"batch":{}}`,
	`{"batch":[`,
	`[]`,
	"",
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range batchSeeds {
		f.Add([]byte(s))
	}
	p := &ingest.Parser{Contacts: &ingest.ContactNormalizer{DefaultRegion: "US"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := p.ParseBatch(body, received)
		if err != nil {
			checkError(t, "ParseBatch", err)
			if items != nil {
				t.Fatal("items with a top-level error")
			}
			return
		}
		for i, it := range items {
			what := fmt.Sprintf("batch[%d]", i)
			if it.Index != i {
				t.Fatalf("%s: Index %d", what, it.Index)
			}
			if it.Err != nil {
				checkError(t, what, it.Err)
				var e *nudge.Error
				errors.As(it.Err, &e)
				if !strings.HasPrefix(e.Field, what) {
					t.Fatalf("%s: error field %q", what, e.Field)
				}
				continue
			}
			checkItem(t, what, it.Item)
		}
	})
}

func FuzzParseCall(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u1","event":"e","properties":{"price":1,"currency":"USD"}}`,
		`{"userId":"u1","traits":{"timezone":"Europe/Paris","lifecycle_stage":"MQL","attributes":{"a":null}}}`,
		`{"userId":"u1","event":"e","originalTimestamp":"2024-03-01T12:00:00Z","sentAt":"9999-12-31T23:59:59Z"}`,
		`{"userId":"u1","event":`,
	} {
		for _, kind := range []string{"track", "identify", "page", "screen"} {
			f.Add(kind, []byte(s))
		}
	}
	p := &ingest.Parser{Contacts: &ingest.ContactNormalizer{DefaultRegion: "GB"}}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		it, err := p.ParseCall(kind, body, received)
		if err != nil {
			checkError(t, "ParseCall", err)
			return
		}
		checkItem(t, "ParseCall", it)
	})
}

func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		importCSV,
		"\uFEFFid,email,phone,timezone,is_customer,sms_consent,email_consent,Lifecycle Stage\r\nc1,a@b.co,+14155550123,UTC,yes,no,unknown,MQL\r\n",
		"Email,notes\n\"A@B.CO\",\"multi\nline\"\nx,\"unterminated\n",
		"id,id\n1,2\n",
		"id,a\"b\n",
		"id\n\n\n,\n",
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), `{"notes":"attributes.n","Email":"email"}`)
	}
	f.Fuzz(func(t *testing.T, data []byte, mapping string) {
		var m ingest.Mapping
		if mapping != "" {
			var err error
			if m, err = ingest.LoadMapping(strings.NewReader(mapping)); err != nil {
				checkError(t, "LoadMapping", err)
				return
			}
		}
		r, err := ingest.NewCSVReader(bytes.NewReader(data), m, &ingest.ContactNormalizer{DefaultRegion: "US"})
		if err != nil {
			checkError(t, "NewCSVReader", err)
			return
		}
		prev := 0
		for range len(data) + 1 { // every row consumes at least a byte
			row, err := r.Next()
			if err == io.EOF {
				if r.BytesRead() != int64(len(data)) {
					t.Fatalf("BytesRead %d at EOF, want %d", r.BytesRead(), len(data))
				}
				return
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if row.Line <= prev {
				t.Fatalf("line %d after line %d", row.Line, prev)
			}
			prev = row.Line
			if row.Err != nil {
				if row.Err.Message == "" || row.Err.Line != row.Line || row.Patch != nil {
					t.Fatalf("bad row error %#v", row)
				}
				continue
			}
			if row.Patch == nil || row.Patch.ID == "" {
				t.Fatalf("row without a patch id: %#v", row)
			}
			for _, c := range row.Consent {
				if err := nudge.ValidateConsentParams(c); err != nil {
					t.Fatalf("consent params: %v", err)
				}
			}
		}
		t.Fatal("Next never returned io.EOF")
	})
}

// BenchmarkParseBatch parses a batch of 100 track events of a realistic size.
func BenchmarkParseBatch(b *testing.B) {
	body := benchBody()
	p := &ingest.Parser{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		items, err := p.ParseBatch(body, received)
		if err != nil || len(items) != 100 || items[99].Err != nil {
			b.Fatalf("ParseBatch: %v, %d items", err, len(items))
		}
	}
}

// benchBody is a batch of 100 track events of about 650 bytes each, the size
// analytics.js sends with its context.
func benchBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"sentAt":"2024-03-01T12:00:10.000Z","batch":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"type":"track","userId":"user-%d","anonymousId":"3f1c2a9e-8d7b-4c6a-9e1f-%012d","event":"Order Completed",`+
			`"messageId":"ajs-next-1709294400000-%d","originalTimestamp":"2024-03-01T12:00:0%d.%03dZ",`+
			`"properties":{"order_id":"o-%d","total":42.5,"revenue":38.25,"currency":"USD","quantity":%d,"coupon":"SPRING","products":[{"sku":"p-1","price":19.99,"quantity":1},{"sku":"p-2","price":22.51,"quantity":1}]},`+
			`"context":{"ip":"203.0.113.%d","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36","library":{"name":"analytics.js","version":"next-1.64.0"},"page":{"path":"/checkout","url":"https://shop.example.com/checkout"}}}`,
			i, i, i, i%10, i, i, i%5+1, i%255)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// FuzzDecodeObject checks DecodeObject, whose decoder is this package's
// own, against encoding/json.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range append(batchSeeds,
		`{"a":"\u00e9\ud83d\ude00 \"q\" \\","b":"caf\xc3\xa9","c":"bad \xff utf8","d":[1,-0,0.5,-1.5e3,1E2,12345678901234567890,-9223372036854775808,9007199254740993.0]}`,
		`{"":{"":[[],{}]},"n":null,"t":true,"f":false,"x":1e400}`,
		`{"a":1,"a":2}`,
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ingest.DecodeObject(data)
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var want map[string]any
		werr := d.Decode(&want)
		if werr == nil && d.InputOffset() < int64(len(data)) && len(bytes.TrimSpace(data[d.InputOffset():])) > 0 {
			werr = errors.New("trailing data")
		}
		if werr == nil && want == nil {
			werr = errors.New("null")
		}
		if werr == nil {
			var cerr error
			want, cerr = convertWant(want)
			if cerr != nil {
				werr = cerr
			}
		}
		if (err != nil) != (werr != nil) {
			t.Fatalf("DecodeObject error %v, encoding/json error %v", err, werr)
		}
		if err != nil {
			checkError(t, "DecodeObject", err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeObject\n got %#v\nwant %#v", got, want)
		}
	})
}

// convertWant converts json.Numbers as the package documents: int64 when
// integral (and exact), else float64; out of range is an error.
func convertWant(m map[string]any) (map[string]any, error) {
	var conv func(v any) (any, error)
	conv = func(v any) (any, error) {
		switch v := v.(type) {
		case json.Number:
			if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return i, nil
			}
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, fmt.Errorf("out of range: %s", v)
			}
			if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				return int64(f), nil
			}
			return f, nil
		case map[string]any:
			for k, x := range v {
				c, err := conv(x)
				if err != nil {
					return nil, err
				}
				v[k] = c
			}
		case []any:
			for i, x := range v {
				c, err := conv(x)
				if err != nil {
					return nil, err
				}
				v[i] = c
			}
		}
		return v, nil
	}
	_, err := conv(m)
	return m, err
}
