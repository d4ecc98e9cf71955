package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/report"
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
	return writeReport(ctx, s, rest, p, ovw, asCSV, asJSON, stdout)
}

// writeReport prints the report of journeys[0] (or the overview) of s.
func writeReport(ctx context.Context, s nudge.Store, journeys []string, p nudge.ReportParams, overview, asCSV, asJSON bool, stdout io.Writer) error {
	rs, ok := s.(report.Store)
	if !ok {
		return fmt.Errorf("report: this store does not answer reports")
	}
	if overview {
		o, err := report.ReadOverview(ctx, rs, &p, report.Options{})
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
		r, err := report.Journey(ctx, rs, &p, report.Options{})
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
