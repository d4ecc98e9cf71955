package sim_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/sim"
)

// runExample simulates examples/NAME and returns the report and its text.
func runExample(t testing.TB, name string) (*sim.Report, string) {
	t.Helper()
	r, err := sim.Run(context.Background(), exampleConfig(t, name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	return r, b.String()
}

// exampleConfig is the simulation of examples/NAME.
func exampleConfig(t testing.TB, name string) sim.Config {
	t.Helper()
	dir := filepath.Join("..", "examples", name)
	jf := filepath.Join(dir, "journey.yaml")
	src, err := os.ReadFile(jf)
	if err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dir, "templates")
	j, err := journey.Parse(jf, src, journey.Options{Templates: func(ch, name string) bool {
		_, err := os.Stat(filepath.Join(tdir, name+"."+ch+".liquid"))
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.Open(filepath.Join(dir, "contacts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	ef, err := os.Open(filepath.Join(dir, "timeline.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	n := &ingest.ContactNormalizer{DefaultRegion: "US"}
	events, err := sim.ReadTimeline("timeline.jsonl", ef, n)
	if err != nil {
		t.Fatal(err)
	}
	contacts, err := io.ReadAll(cf)
	if err != nil {
		t.Fatal(err)
	}
	return sim.Config{
		Journeys: []*journey.Journey{j}, Contacts: bytes.NewReader(contacts), Events: events, Normalizer: n, Dir: t.TempDir(),
	}
}

// webinarJourney parses examples/webinar/journey.yaml (templates unchecked).
func webinarJourney(t testing.TB) *journey.Journey {
	t.Helper()
	src, err := os.ReadFile("../examples/webinar/journey.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := journey.Parse("journey.yaml", src, journey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}
