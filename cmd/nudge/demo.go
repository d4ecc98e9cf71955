package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/nudge/nudge/sim"
)

// demoExamples are the scenarios nudge demo plays, in order: folders of
// examples/, each with journey.yaml, templates/, contacts.csv and
// timeline.jsonl.
var demoExamples = []struct{ dir, title string }{
	{"webinar", "Webinar reminder"},
	{"stalled-prospect", "Stalled high-intent prospect"},
	{"onboarding", "New-customer onboarding"},
	{"renewal", "Time-sensitive renewal"},
}

// runDemo simulates the four examples, each on its own virtual clock and
// temporary store, and prints their decisions and a summary.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("demo", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", "examples", "the examples folder")
	summary := fset.Bool("summary", false, "print only each example's totals")
	if err := fset.Parse(args); err != nil {
		return errUsage
	}
	if _, err := os.Stat(filepath.Join(*dir, demoExamples[0].dir, "journey.yaml")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no examples in %s: run nudge demo from the repository's root, or give --dir PATH/TO/examples", *dir)
	}
	type row struct {
		title string
		r     *sim.Report
	}
	var rows []row
	for i, ex := range demoExamples {
		d := filepath.Join(*dir, ex.dir)
		in := simInput{
			Journeys: []string{filepath.Join(d, "journey.yaml")},
			Contacts: filepath.Join(d, "contacts.csv"),
			Events:   filepath.Join(d, "timeline.jsonl"),
			Region:   "US",
		}
		cfg, closeFn, err := loadSim(in, io.Discard)
		if err != nil {
			closeFn()
			return fmt.Errorf("%s: %w", d, err)
		}
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		r, err := sim.Run(ctx, cfg)
		closeFn()
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "━━ %d. %s (%s) ━━\n\n", i+1, ex.title, d)
		if err := r.WriteText(stdout, *summary); err != nil {
			return err
		}
		rows = append(rows, row{ex.title, r})
	}

	fmt.Fprintf(stdout, "\n━━ Summary ━━\n\n")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "example\tcontacts\tentered\temails\ttexts\tconverted\theld out\t\n")
	for _, x := range rows {
		entered, converted, held := 0, 0, 0
		for _, j := range x.r.Totals.Journeys {
			entered += j.Entered
			converted += j.Converted
			held += j.HeldOut
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", x.title, x.r.ContactsImported, entered,
			x.r.Totals.Messages["email"], x.r.Totals.Messages["sms"], converted, held)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nEvery decision above has a reason. Simulate your own journeys with\n"+
		"nudge simulate --journey FILE --contacts FILE.csv --events FILE.jsonl (see docs/simulation.md).\n")
	return nil
}
