package sim_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/sim"
)

// TestDeterministic runs the same input twice: the text and JSON reports
// must be byte-identical.
func TestDeterministic(t *testing.T) {
	for _, name := range []string{"webinar", "stalled-prospect", "onboarding", "renewal"} {
		t.Run(name, func(t *testing.T) {
			r1, text1 := runExample(t, name)
			r2, text2 := runExample(t, name)
			if text1 != text2 {
				t.Errorf("text reports differ:\n%s\n----\n%s", text1, text2)
			}
			var j1, j2 bytes.Buffer
			if err := r1.WriteJSON(&j1); err != nil {
				t.Fatal(err)
			}
			if err := r2.WriteJSON(&j2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(j1.Bytes(), j2.Bytes()) {
				t.Error("JSON reports differ")
			}
		})
	}
}

// TestTotalsOnly: a report of the totals alone has the same totals as the
// whole report, without the contacts' decisions.
func TestTotalsOnly(t *testing.T) {
	for _, name := range []string{"webinar", "stalled-prospect", "onboarding", "renewal"} {
		t.Run(name, func(t *testing.T) {
			whole, _ := runExample(t, name)
			cfg := exampleConfig(t, name)
			cfg.TotalsOnly = true
			totals, err := sim.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if whole.Totals.Decisions == 0 || len(whole.Contacts) == 0 {
				t.Fatalf("the whole report has %d decisions of %d contacts; want some", whole.Totals.Decisions, len(whole.Contacts))
			}
			if d := cmp.Diff(whole.Totals, totals.Totals); d != "" {
				t.Errorf("totals (-whole report +totals only):\n%s", d)
			}
			if len(totals.Contacts) != 0 {
				t.Errorf("the totals-only report has %d contacts' decisions; want none", len(totals.Contacts))
			}
		})
	}
}

func TestReadTimelineErrors(t *testing.T) {
	in := strings.Join([]string{
		`# a comment`,
		`{"type":"track","userId":"u1","event":"a","timestamp":"2026-03-02T10:00:00Z"}`,
		`{"type":"track","userId":"u1","event":"b"}`,
		`{"type":"fly","userId":"u1","timestamp":"2026-03-02T10:00:00Z"}`,
		`{"type":"track","event":"c","timestamp":"2026-03-02T10:00:00Z"}`,
		`not json`,
		``,
	}, "\n")
	_, err := sim.ReadTimeline("t.jsonl", strings.NewReader(in), nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"t.jsonl:3: \"timestamp\" is required", "t.jsonl:4: \"type\" \"fly\"", "t.jsonl:5: userId", "t.jsonl:6: not a JSON object"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

func TestReadTimelineOrder(t *testing.T) {
	in := `{"type":"track","userId":"u1","event":"late","timestamp":"2026-03-02T12:00:00Z"}
{"type":"identify","userId":"u1","timestamp":"2026-03-02T10:00:00Z","traits":{"plan":"pro"}}
{"type":"track","userId":"u1","event":"same","timestamp":"2026-03-02T12:00:00Z"}
`
	evs, err := sim.ReadTimeline("t.jsonl", strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Item.Event.Type+":"+e.Item.Event.Name+":"+e.Item.Event.MessageID)
	}
	want := "identify::sim-2 track:late:sim-1 track:same:sim-3"
	if strings.Join(got, " ") != want {
		t.Errorf("events = %v, want %s", got, want)
	}
}

// TestWindow checks --from and --to: events outside are left out, and the
// replay stops at To even with waits pending.
func TestWindow(t *testing.T) {
	j := webinarJourney(t)
	f, err := os.Open("../examples/webinar/timeline.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := sim.ReadTimeline("timeline.jsonl", f, &ingest.ContactNormalizer{DefaultRegion: "US"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.Open("../examples/webinar/contacts.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	from := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	r, err := sim.Run(context.Background(), sim.Config{Journeys: []*journey.Journey{j}, Contacts: cf, Events: evs, From: from, To: to, Dir: filepath.Join(t.TempDir(), "sim")})
	if err != nil {
		t.Fatal(err)
	}
	if r.EventsOutside != 4 || r.Events != 6 {
		t.Errorf("events replayed %d, outside %d; want 6 and 4", r.Events, r.EventsOutside)
	}
	for _, cd := range r.Contacts {
		for _, d := range cd.Decisions {
			if d.At.Before(from) || d.At.After(to) {
				t.Errorf("decision outside the window: %+v", d)
			}
		}
	}
	if j := r.Totals.Journeys[0]; j.Live != 6 {
		t.Errorf("live enrollments at the end = %d, want 6", j.Live)
	}
}
