package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

const journeyUsage = `usage:
  nudge journey validate [--templates DIR] FILE...   check journey files (no database)
  nudge journey publish [--templates DIR] FILE...    validate, then publish each as a new version
  nudge journey list [--all]                         journeys: id, name, status, version, updated
  nudge journey pause|resume|archive ID
  nudge journey resume ID --step STEP                resume a step paused on its opt-out rate
  nudge journey diff ID [V1 [V2]]                    what changed between two versions
  nudge journey schema                               print the JSON Schema of journey files

Templates: a step's template NAME must exist as templates/NAME.email.liquid
or templates/NAME.sms.liquid in the folder of the journey file (or under
--templates DIR). When there is no such folder, templates are not checked.`

func runJourney(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	switch what {
	case "validate":
		return journeyValidate(args, stdout, stderr)
	case "publish":
		return journeyPublish(ctx, args, stdout, stderr)
	case "list":
		return journeyList(ctx, args, stdout, stderr)
	case "pause", "resume", "archive":
		return journeySetStatus(ctx, what, args, stdout, stderr)
	case "diff":
		return journeyDiff(ctx, args, stdout, stderr)
	case "schema":
		_, err := stdout.Write(journey.Schema())
		return err
	}
	fmt.Fprintln(stderr, journeyUsage)
	return errUsage
}

// templateChecker returns the Options.Templates function for a journey
// file: templates live in DIR/NAME.CHANNEL.liquid, DIR being dir if set,
// else the "templates" folder next to the file. note is what to tell the
// user when no such folder exists (templates are then not checked).
func templateChecker(file, dir string) (check func(channel, name string) bool, note string) {
	if dir == "" {
		dir = filepath.Join(filepath.Dir(file), "templates")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Sprintf("%s: templates not checked: no folder %s", file, dir)
	}
	return func(channel, name string) bool {
		st, err := os.Stat(filepath.Join(dir, name+"."+channel+".liquid"))
		return err == nil && st.Mode().IsRegular()
	}, ""
}

// parseFiles parses journey files; it prints every problem of every file
// as file:line:col and returns the journeys of the files without problems.
// bad counts the files with problems. With unique, two files with one id
// is a problem (they cannot be published or simulated together).
func parseFiles(files []string, templates string, unique bool, stderr io.Writer) (js []*journey.Journey, bad int, err error) {
	if len(files) == 0 {
		return nil, 0, fmt.Errorf("give one or more journey files")
	}
	seen := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, 0, err
		}
		check, note := templateChecker(f, templates)
		if note != "" {
			fmt.Fprintln(stderr, note)
		}
		j, err := journey.Parse(f, src, journey.Options{Templates: check})
		var ve *journey.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, p := range ve.Problems {
				fmt.Fprintln(stderr, p.String())
			}
			bad++
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("%s: %w", f, err)
		}
		if other, ok := seen[j.ID]; ok && unique {
			fmt.Fprintf(stderr, "%s:1:1: journey id %q is also the id of %s; each journey needs its own id\n", f, j.ID, other)
			bad++
			continue
		}
		seen[j.ID] = f
		js = append(js, j)
	}
	return js, bad, nil
}

func journeyFlags(name string, args []string, stderr io.Writer) (*flag.FlagSet, string, error) {
	fs := flag.NewFlagSet("journey "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	templates := fs.String("templates", "", "template folder (default: templates/ next to each journey file)")
	if err := fs.Parse(args); err != nil {
		return nil, "", errUsage
	}
	return fs, *templates, nil
}

func journeyValidate(args []string, stdout, stderr io.Writer) error {
	fs, templates, err := journeyFlags("validate", args, stderr)
	if err != nil {
		return err
	}
	js, bad, err := parseFiles(fs.Args(), templates, false, stderr)
	if err != nil {
		return err
	}
	for _, j := range js {
		fmt.Fprintf(stdout, "%s: ok (%s, %d steps)\n", j.File, j.ID, len(j.Steps))
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d journey files have problems", bad, fs.NArg())
	}
	return nil
}

// journeyPublish validates every file first and publishes only when all
// are valid, so a set of journeys released together goes out together or
// not at all.
func journeyPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var templates string
	s, _, fs, err := openFor(ctx, "journey publish", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&templates, "templates", "", "template folder (default: templates/ next to each journey file)")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	js, bad, err := parseFiles(fs.Args(), templates, true, stderr)
	if err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d journey files have problems; nothing was published", bad, fs.NArg())
	}
	now := nudge.SystemClock{}.Now()
	for _, j := range js {
		v, created, err := s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: j.ID, Name: j.Name, Source: j.Source, Hash: j.Hash()}, now)
		if err != nil {
			return fmt.Errorf("publish %s: %w", j.File, err)
		}
		if created {
			fmt.Fprintf(stdout, "published %s v%d\n", j.ID, v.Version)
		} else {
			fmt.Fprintf(stdout, "%s unchanged (v%d)\n", j.ID, v.Version)
		}
	}
	return nil
}

func journeyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var all bool
	s, _, _, err := openFor(ctx, "journey list", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&all, "all", false, "include archived journeys")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.JourneyList(ctx)
	if err != nil {
		return err
	}
	paused, err := pausedSteps(ctx, s)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSTATUS\tVERSION\tUPDATED\tPAUSED STEPS")
	for _, j := range list {
		if j.Status == nudge.JourneyArchived && !all {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\tv%d\t%s\t%s\n", j.ID, j.Name, j.Status, j.Version, j.UpdatedAt.Format(time.RFC3339), paused[j.ID])
	}
	return w.Flush()
}

func journeySetStatus(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	var step string
	s, _, rest, err := openInterspersed(ctx, "journey "+what, args, stderr, func(fs *flag.FlagSet) {
		if what == "resume" {
			fs.StringVar(&step, "step", "", "resume this step, paused on its opt-out rate, not the journey")
		}
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if len(rest) != 1 {
		return fmt.Errorf("journey %s: give one journey id (see nudge journey list)", what)
	}
	id := rest[0]
	if step != "" {
		return resumeStep(ctx, s, id, step, stdout)
	}
	status := map[string]string{"pause": nudge.JourneyPaused, "resume": nudge.JourneyActive, "archive": nudge.JourneyArchived}[what]
	cur, err := s.JourneyGet(ctx, id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	if what == "resume" && cur.Status == nudge.JourneyArchived {
		return fmt.Errorf("resume %s: it is archived; publish it again to make it active", id)
	}
	if err := s.JourneySetStatus(ctx, id, status, nudge.SystemClock{}.Now()); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	fmt.Fprintf(stdout, "%s is %s (v%d)\n", id, status, cur.Version)
	return nil
}

// journeyDiff prints a unified diff of two versions' sources: by default
// the latest against the one before; with V1, V1 against the latest.
func journeyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, _, fs, err := openFor(ctx, "journey diff", args, stderr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if fs.NArg() < 1 || fs.NArg() > 3 {
		return fmt.Errorf("journey diff: give a journey id and up to two versions: diff ID [V1 [V2]]")
	}
	id := fs.Arg(0)
	j, err := s.JourneyGet(ctx, id)
	if err != nil {
		return err
	}
	var v1, v2 int64
	switch fs.NArg() {
	case 1:
		v1, v2 = j.Version-1, j.Version
		if v1 < 1 {
			fmt.Fprintf(stdout, "%s has one version (v%d): nothing to compare\n", id, j.Version)
			return nil
		}
	case 2:
		v2 = j.Version
		if v1, err = parseVersion(fs.Arg(1)); err != nil {
			return err
		}
	case 3:
		if v1, err = parseVersion(fs.Arg(1)); err != nil {
			return err
		}
		if v2, err = parseVersion(fs.Arg(2)); err != nil {
			return err
		}
	}
	a, err := s.JourneyVersionGet(ctx, id, v1)
	if err != nil {
		return err
	}
	b, err := s.JourneyVersionGet(ctx, id, v2)
	if err != nil {
		return err
	}
	d := unifiedDiff(
		fmt.Sprintf("%s v%d (%s)", id, v1, a.PublishedAt.Format(time.RFC3339)),
		fmt.Sprintf("%s v%d (%s)", id, v2, b.PublishedAt.Format(time.RFC3339)),
		string(a.Source), string(b.Source), 3)
	if d == "" {
		fmt.Fprintf(stdout, "v%d and v%d of %s are the same\n", v1, v2, id)
		return nil
	}
	_, err = io.WriteString(stdout, d)
	return err
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%q is not a version: write 2 or v2", s)
	}
	return v, nil
}

// unifiedDiff returns the unified diff (as diff -u prints it, with context
// lines of context) turning a into b, "" if they are equal. Journey files
// are small: a quadratic longest-common-subsequence is fine.
func unifiedDiff(nameA, nameB, a, b string, context int) string {
	if a == b {
		return ""
	}
	la, lb := splitLines(a), splitLines(b)
	n, m := len(la), len(lb)
	// lcs[i][j]: length of the LCS of la[i:] and lb[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		line string
		ai   int // index in a (for ' ' and '-'), in b for '+'
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && la[i] == lb[j]:
			ops = append(ops, op{' ', la[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', la[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', lb[j], i, j})
			j++
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: from context lines before the change to context lines
		// after the last change that is within 2*context of the next.
		start := max(0, k-context)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(len(ops), end+context)
				break
			}
			end = run
		}
		aStart, bStart := ops[start].ai, ops[start].bi
		aLen, bLen := 0, 0
		for _, o := range ops[start:end] {
			switch o.kind {
			case ' ':
				aLen++
				bLen++
			case '-':
				aLen++
			case '+':
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return strconv.Itoa(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
