package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/sim"
)

// files is a repeatable flag.
type files []string

func (f *files) String() string { return strings.Join(*f, ",") }
func (f *files) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*f = append(*f, s)
		}
	}
	return nil
}

// simInput names the files of one simulation.
type simInput struct {
	Journeys  []string
	Templates string // "" : templates/ next to each journey file
	Contacts  string // "" : none
	Mapping   string
	Events    string // "" : none
	From, To  time.Time
	Region    string
	Policy    string // "" : the shipped default
}

// loadSim reads and checks the files of a simulation into a sim.Config.
// Journey problems are printed to stderr as file:line:col.
func loadSim(in simInput, stderr io.Writer) (cfg sim.Config, closeFn func(), err error) {
	closeFn = func() {}
	js, bad, err := parseFiles(in.Journeys, in.Templates, true, stderr)
	if err != nil {
		return cfg, closeFn, err
	}
	if bad > 0 {
		return cfg, closeFn, fmt.Errorf("%d of %d journey files have problems", bad, len(in.Journeys))
	}
	n := &ingest.ContactNormalizer{DefaultRegion: in.Region}
	cfg = sim.Config{Journeys: js, From: in.From, To: in.To, Normalizer: n}
	if in.Policy != "" {
		// As nudge policy validate reads it: problems as file:line:col.
		if _, cfg.Policy, err = readPolicy(in.Policy, stderr); err != nil {
			return cfg, closeFn, err
		}
	}
	if in.Events != "" {
		f, err := os.Open(in.Events)
		if err != nil {
			return cfg, closeFn, err
		}
		cfg.Events, err = sim.ReadTimeline(in.Events, f, n)
		f.Close()
		if err != nil {
			return cfg, closeFn, err
		}
	}
	if in.Mapping != "" {
		f, err := os.Open(in.Mapping)
		if err != nil {
			return cfg, closeFn, err
		}
		cfg.Mapping, err = ingest.LoadMapping(f)
		f.Close()
		if err != nil {
			return cfg, closeFn, fmt.Errorf("%s: %w", in.Mapping, err)
		}
	}
	if in.Contacts != "" {
		f, err := os.Open(in.Contacts)
		if err != nil {
			return cfg, closeFn, err
		}
		cfg.Contacts, cfg.ContactsName = f, in.Contacts
		closeFn = func() { f.Close() }
	}
	return cfg, closeFn, nil
}

// timeFlag parses RFC 3339 times, or a date (midnight UTC).
type timeFlag struct{ t *time.Time }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f timeFlag) Set(v string) error {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			*f.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%q is not a time: write 2026-03-02T09:00:00Z or 2026-03-02", v)
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		in         simInput
		jsonOut    bool
		summary    bool
		withReport bool
		cpuProfile string
	)
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var((*files)(&in.Journeys), "journey", "journey file (repeat, or separate with commas; files after the flags count too)")
	fs.StringVar(&in.Templates, "templates", "", "template folder (default: templates/ next to each journey file)")
	fs.StringVar(&in.Contacts, "contacts", "", "contacts CSV (a CRM export, as for nudge import contacts)")
	fs.StringVar(&in.Mapping, "mapping", "", "JSON file mapping the CSV's headers to fields")
	fs.StringVar(&in.Events, "events", "", "timeline: one Segment identify/track call per line, each with a timestamp")
	fs.Var(timeFlag{&in.From}, "from", "start of the replay (default: the first event's time)")
	fs.Var(timeFlag{&in.To}, "to", "end of the replay (default: 30 days after the last event)")
	fs.StringVar(&in.Policy, "policy", "", "workspace policy file to simulate under, as nudge policy validate reads it (default: the shipped default policy)")
	fs.StringVar(&in.Region, "default-region", DefaultConfig().DefaultRegion, "region for phone numbers written without +country code")
	fs.BoolVar(&jsonOut, "json", false, "print the report as one JSON document")
	fs.BoolVar(&summary, "summary", false, "print only the totals, not every decision (and keep only the totals in memory)")
	fs.BoolVar(&withReport, "report", false, "at the end, print each journey's report (funnel, lift, attribution, opt-outs) of the simulation")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	in.Journeys = append(in.Journeys, fs.Args()...)
	if len(in.Journeys) == 0 {
		fmt.Fprintln(stderr, "usage: nudge simulate --journey FILE... [--contacts FILE.csv] [--events FILE.jsonl] [--policy FILE] [--from T] [--to T] [--json] [--summary]")
		return errUsage
	}
	cfg, closeFn, err := loadSim(in, stderr)
	defer closeFn()
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.TotalsOnly = summary && !jsonOut
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var keep *simKeep
	if withReport {
		if keep, err = keepSimStore(&cfg); err != nil {
			return err
		}
		defer keep.remove()
	}
	start := time.Now()
	r, err := sim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if jsonOut && keep == nil {
		return r.WriteJSON(stdout)
	}
	if jsonOut {
		if err := r.WriteJSON(stdout); err != nil {
			return err
		}
	} else if err := r.WriteText(stdout, summary); err != nil {
		return err
	}
	if keep != nil {
		if err := keep.report(ctx, r, jsonOut, stdout); err != nil {
			return err
		}
	}
	// On stderr: the wall time is the only thing that differs between runs.
	fmt.Fprintf(stderr, "simulated in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
