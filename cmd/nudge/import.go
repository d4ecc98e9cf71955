package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

func runImportContacts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var mappingPath string
	var batch int
	var quiet bool
	s, cfg, fs, err := openFor(ctx, "import contacts", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&mappingPath, "mapping", "", `JSON file mapping CSV headers to fields, e.g. {"Mobile": "phone", "Plan": "attributes.plan"}`)
		fs.IntVar(&batch, "batch", 1000, "rows per transaction")
		fs.BoolVar(&quiet, "quiet", false, "no progress bar")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if fs.NArg() != 1 {
		return fmt.Errorf("import contacts: give one CSV file (or - for stdin)")
	}

	var mapping ingest.Mapping
	if mappingPath != "" {
		f, err := os.Open(mappingPath)
		if err != nil {
			return err
		}
		mapping, err = ingest.LoadMapping(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", mappingPath, err)
		}
	}

	in, size := io.Reader(os.Stdin), int64(0)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}

	r, err := ingest.NewCSVReader(in, mapping, &ingest.ContactNormalizer{DefaultRegion: cfg.DefaultRegion})
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	bar := newProgress(stderr, size, quiet)
	clock := nudge.SystemClock{}
	sum, err := ingest.Import(ctx, s, r, ingest.ImportOptions{
		BatchSize: batch,
		Now:       clock.Now,
		OnError: func(e ingest.RowError) {
			bar.clear()
			fmt.Fprintf(stderr, "%s: %v\n", fs.Arg(0), &e)
		},
		OnProgress: bar.update,
	})
	bar.clear()
	if err != nil {
		return fmt.Errorf("import %s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "imported %d, updated %d, rejected %d", sum.Imported, sum.Updated, sum.Rejected)
	if sum.ConsentRejected > 0 {
		fmt.Fprintf(stdout, ", consent changes refused %d", sum.ConsentRejected)
	}
	fmt.Fprintf(stdout, " (%s)\n", bar.elapsed())
	return nil
}

// progress draws a one-line progress bar on a terminal, and nothing elsewhere.
type progress struct {
	w     io.Writer
	size  int64
	on    bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, size int64, quiet bool) *progress {
	p := &progress{w: w, size: size, start: time.Now()}
	if f, ok := w.(*os.File); ok && !quiet {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(rows int, bytes int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	rate := float64(rows) / time.Since(p.start).Seconds()
	if p.size > 0 {
		frac := min(float64(bytes)/float64(p.size), 1)
		n := int(frac * 30)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d rows, %.0f rows/s ", strings.Repeat("=", n), strings.Repeat(" ", 30-n), frac*100, rows, rate)
	} else {
		fmt.Fprintf(p.w, "\r%d rows, %.0f rows/s ", rows, rate)
	}
	p.drawn = true
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 70))
		p.drawn = false
	}
}

func (p *progress) elapsed() string { return time.Since(p.start).Round(time.Millisecond).String() }
