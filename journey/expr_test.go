package journey

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func mustParse(t *testing.T, file string) *Journey {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse(file, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestWebinarJourney(t *testing.T) {
	j := mustParse(t, "webinar-reminder.yaml")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &nudge.Contact{ID: "c1", Email: "jane@example.com", Attributes: map[string]any{"joined": true}}
	ev := &nudge.Event{Name: "webinar.registered", Properties: map[string]any{"webinar_id": "w1", "starts_at": "2026-03-05T15:00:00Z"}, Timestamp: now}
	v := Vars{Contact: c, Event: ev, Journey: JourneyVars{ID: j.ID, Key: "w1", EnteredAt: now}}

	if got, want := j.First().ID, "confirm"; got != want {
		t.Errorf("First = %q, want %q", got, want)
	}
	for id, want := range map[string]string{"confirm": "day-before", "text": "done", "done": ""} {
		if got := j.Step(id).Next(); got != want {
			t.Errorf("Step(%q).Next() = %q, want %q", id, got, want)
		}
	}
	if b := j.Step("joined-yet").Branch; b.Cases[0].Then != "done" || b.Else != "text" {
		t.Errorf("branch = %+v", b)
	}
	if ok, err := j.Trigger.Filter.EvalBool(v); err != nil || !ok {
		t.Errorf("filter = %v, %v; want true", ok, err)
	}
	if key, err := j.Key.EvalString(v); err != nil || key != "w1" {
		t.Errorf("key = %q, %v; want w1", key, err)
	}
	at, err := j.Step("hour-before").Wait.Until.EvalTime(v)
	if want := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC); err != nil || !at.Equal(want) {
		t.Errorf("wait until = %v, %v; want %v", at, err, want)
	}
	if ok, err := j.Step("joined-yet").Branch.Cases[0].If.EvalBool(v); err != nil || !ok {
		t.Errorf("joined = %v, %v; want true", ok, err)
	}
	if ok, err := j.Goal.Match.EvalBool(Vars{Contact: c, Event: &nudge.Event{Properties: map[string]any{"webinar_id": "w2"}}, Journey: v.Journey}); err != nil || ok {
		t.Errorf("goal match on another webinar = %v, %v; want false", ok, err)
	}
	if j.Hash() == "" || j.Hash() != mustParse(t, "webinar-reminder.yaml").Hash() {
		t.Error("Hash is not stable")
	}
}

func TestEvalErrors(t *testing.T) {
	j := mustParse(t, "webinar-reminder.yaml")
	c := &nudge.Contact{ID: "c1"}
	// No event: reading it is an error, not false.
	if _, err := j.Trigger.Filter.EvalBool(Vars{Contact: c}); err == nil {
		t.Error("filter without an event: no error")
	}
	// A missing attribute is an error too.
	if _, err := j.Step("joined-yet").Branch.Cases[0].If.EvalBool(Vars{Contact: c}); err == nil {
		t.Error("missing attribute: no error")
	}
	// A dyn that is not a bool.
	src := []byte(head + "entry: 'contact.attributes.plan'\nsteps: [{id: a, exit: {}}]\n")
	j2, err := Parse("f.yaml", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j2.Entry.EvalBool(Vars{Contact: &nudge.Contact{Attributes: map[string]any{"plan": "pro"}}}); err == nil {
		t.Error("string as a condition: no error")
	}
}

func TestCostLimit(t *testing.T) {
	src := []byte(head + "entry: 'contact.attributes.xs.all(a, contact.attributes.xs.all(b, contact.attributes.xs.all(c, a + b + c >= 0)))'\nsteps: [{id: a, exit: {}}]\n")
	j, err := Parse("f.yaml", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	xs := make([]any, 200)
	for i := range xs {
		xs[i] = int64(i)
	}
	if _, err := j.Entry.EvalBool(Vars{Contact: &nudge.Contact{Attributes: map[string]any{"xs": xs}}}); err == nil {
		t.Error("no error past the cost limit")
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "-7d", want: -7 * 24 * time.Hour},
		{in: "0", want: 0},
		{in: "3 days", bad: true},
		{in: "30", bad: true},
		{in: "d", bad: true},
		{in: "", bad: true},
		{in: "5y", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.bad {
				if err == nil {
					t.Errorf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for in, want := range map[string]string{"3 days": "3d", "1 day, 12 hours": "1d12h", "2 weeks": "2w", "90 mins": "90m", "soon": ""} {
		if got := suggestDuration(in); got != want {
			t.Errorf("suggestDuration(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitAndHoldout(t *testing.T) {
	j, err := Parse("f.yaml", []byte(head+"holdout: 10\nsteps:\n  - id: s\n    split: [{weight: 30, next: a}, {weight: 70, next: b}]\n  - id: a\n    exit: {}\n  - id: b\n    exit: {}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := j.Step("s")
	counts := map[string]int{}
	held := 0
	for i := range 10000 {
		id := "c" + string(rune('a'+i%26)) + time.Duration(i).String()
		if s.SplitNext(id) != s.SplitNext(id) || j.HeldOut(id) != j.HeldOut(id) {
			t.Fatal("not stable")
		}
		counts[s.SplitNext(id)]++
		if j.HeldOut(id) {
			held++
		}
	}
	if counts["a"] < 2700 || counts["a"] > 3300 || counts["b"] < 6700 {
		t.Errorf("split counts = %v, want about 30/70", counts)
	}
	if held < 800 || held > 1200 {
		t.Errorf("held out %d of 10000, want about 1000", held)
	}
	if got := s.Targets(); len(got) != 2 {
		t.Errorf("Targets = %v", got)
	}
}

func TestUpdateContactPatch(t *testing.T) {
	j, err := Parse("f.yaml", []byte(head+"steps:\n  - id: u\n    update_contact: {set: {journey_stage: nurture, is_customer: true, \"attributes.score\": 3, \"attributes.old\": null}}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &nudge.Contact{ID: "c1", Attributes: map[string]any{"old": "x"}}
	j.Step("u").UpdateContact.Patch("c1").Apply(c)
	if c.JourneyStage != "nurture" || !c.IsCustomer || c.Attributes["score"] != int64(3) {
		t.Errorf("contact after patch = %+v", c)
	}
	if _, ok := c.Attributes["old"]; ok {
		t.Error("null did not delete the attribute")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		src, _ := os.ReadFile(file)
		f.Add(src)
	}
	f.Add([]byte(head + "steps:\n  - id: a\n    wait: {for: 3 days}\n"))
	f.Add([]byte("id: [\n"))
	f.Add([]byte("&a x: *a\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		j, err := Parse("f.yaml", src, Options{Templates: func(string, string) bool { return true }})
		if err == nil {
			if j == nil || len(j.Steps) == 0 {
				t.Fatal("no error and no journey")
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("error %T %v is not a *ValidationError with problems", err, err)
		}
		for _, p := range ve.Problems {
			if p.Line < 1 || p.Col < 1 || p.Message == "" || p.File != "f.yaml" {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}

func TestSchema(t *testing.T) {
	var v map[string]any
	if err := json.Unmarshal(Schema(), &v); err != nil {
		t.Fatalf("Schema is not JSON: %v", err)
	}
	doc, err := os.ReadFile("../docs/journey.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, Schema()) {
		t.Error("docs/journey.schema.json differs from journey/journey.schema.json: copy it over")
	}
	props := v["$defs"].(map[string]any)["step"].(map[string]any)["properties"].(map[string]any)
	for _, k := range StepKinds {
		if props[string(k)] == nil {
			t.Errorf("schema has no step kind %q", k)
		}
	}
}
