package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/report"
	"github.com/nudge/nudge/sim"
	"github.com/nudge/nudge/store/sqlite"
)

const reportUsage = `usage:
  nudge report JOURNEY [--from T] [--to T] [--version N] [--csv | --json]
      one journey: funnel, time to goal, paths, lift, attribution, opt-outs
  nudge report --overview [--from T] [--to T] [--csv | --json]
      every journey's headline numbers

--from and --to bound the entry time of the enrollments counted (RFC 3339 or a date).`

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		p                  nudge.ReportParams
		asCSV, asJSON, ovw bool
	)
	s, _, rest, err := openInterspersed(ctx, "report", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(timeFlag{&p.From}, "from", "count enrollments entered at or after this time")
		fs.Var(timeFlag{&p.To}, "to", "count enrollments entered before this time")
		fs.Int64Var(&p.Version, "version", 0, "only this version (default: all)")
		fs.BoolVar(&asCSV, "csv", false, "print CSV")
		fs.BoolVar(&asJSON, "json", false, "print JSON, as the API answers")
		fs.BoolVar(&ovw, "overview", false, "every journey's headline numbers")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if (ovw && len(rest) != 0) || (!ovw && len(rest) != 1) || (asCSV && asJSON) {
		fmt.Fprintln(stderr, reportUsage)
		return errUsage
	}
	return writeReport(ctx, s, rest, p, report.Options{Now: nudge.SystemClock{}.Now()}, ovw, asCSV, asJSON, stdout)
}

// writeReport prints the report of journeys[0] (or the overview) of s.
func writeReport(ctx context.Context, s nudge.Store, journeys []string, p nudge.ReportParams, opt report.Options, overview, asCSV, asJSON bool, stdout io.Writer) error {
	rs := report.Store(s)
	if overview {
		o, err := report.ReadOverview(ctx, rs, &p, opt)
		switch {
		case err != nil:
			return err
		case asJSON:
			return writeIndented(stdout, o)
		case asCSV:
			return o.WriteCSV(stdout)
		}
		return o.WriteText(stdout)
	}
	for i, id := range journeys {
		p.JourneyID = id
		r, err := report.Journey(ctx, rs, &p, opt)
		if err != nil {
			return fmt.Errorf("report %s: %w", id, err)
		}
		if i > 0 && !asJSON && !asCSV {
			fmt.Fprintln(stdout)
		}
		switch {
		case asJSON:
			err = writeIndented(stdout, r)
		case asCSV:
			err = r.WriteCSV(stdout)
		default:
			err = r.WriteText(stdout)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// simKeep keeps a simulation's temporary store for its report. sim.Run
// removes its store file when it returns; a hard link made while it runs
// keeps the database (checkpointed when the simulation closes it) under a
// second name until the report is printed.
type simKeep struct {
	dir  string
	once bool
	err  error
}

// keepSimStore points cfg at a directory of its own and links the store
// file there once the simulation has created it.
func keepSimStore(cfg *sim.Config) (*simKeep, error) {
	dir, err := os.MkdirTemp("", "nudge-sim-report-")
	if err != nil {
		return nil, err
	}
	k := &simKeep{dir: dir}
	cfg.Dir = dir
	cfg.Reports = true // the report reads the counters a slim store drops
	progress := cfg.Progress
	cfg.Progress = func(now time.Time) {
		if !k.once {
			k.once = true
			k.err = os.Link(filepath.Join(dir, "sim.db"), filepath.Join(dir, "report.db"))
		}
		if progress != nil {
			progress(now)
		}
	}
	return k, nil
}

func (k *simKeep) remove() { os.RemoveAll(k.dir) }

// report prints the report of each journey the simulation published.
func (k *simKeep) report(ctx context.Context, r *sim.Report, asJSON bool, stdout io.Writer) error {
	if k.err != nil || !k.once {
		return fmt.Errorf("simulate --report: the simulation's store could not be kept: %v", k.err)
	}
	db, err := sqlite.Open(filepath.Join(k.dir, "report.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	var ids []string
	for _, j := range r.Journeys {
		ids = append(ids, j.ID)
	}
	if !asJSON {
		fmt.Fprintln(stdout, "\nREPORT")
	}
	// On a virtual clock, retention is counted as of the last time the
	// simulation recorded (Options.Now zero).
	return writeReport(ctx, db, ids, nudge.ReportParams{}, report.Options{}, false, false, asJSON, stdout)
}
