package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/policy"
)

const policyUsage = `usage:
  nudge policy validate FILE          check a policy file (no database)
  nudge policy publish FILE           validate, then publish it as the next version
  nudge policy show [--version N]     print the latest (or version N) policy file;
                                      the built-in default until one is published
  nudge policy versions               the published versions
  nudge policy diff [V1 [V2]]         what changed: latest against the one before,
                                      V1 against the latest, or V1 against V2
                                      (a version is 2 or v2; "default" is the built-in one)`

const suppressUsage = `usage:
  nudge suppress add [--channel sms|email] [--reason R] [--note TEXT] ADDRESS...
  nudge suppress remove [--channel sms|email] ADDRESS...
  nudge suppress list [--channel sms|email] [--limit N]

An address with an @ is an email address, any other a phone number (made
E.164 with --default-region), unless --channel says. Reasons: ` + "do_not_contact (default), hard_bounce, complaint, provider_opt_out, unreachable."

func runPolicy(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	switch what {
	case "validate":
		return policyValidate(args, stdout, stderr)
	case "publish":
		return policyPublish(ctx, args, stdout, stderr)
	case "show":
		return policyShow(ctx, args, stdout, stderr)
	case "versions":
		return policyVersions(ctx, args, stdout, stderr)
	case "diff":
		return policyDiff(ctx, args, stdout, stderr)
	}
	fmt.Fprintln(stderr, policyUsage)
	return errUsage
}

// openPolicy opens the store for a policy command.
func openPolicy(ctx context.Context, name string, args []string, stderr io.Writer, more func(*flag.FlagSet)) (nudge.Store, nudge.PolicyStore, []string, error) {
	s, _, rest, err := openInterspersed(ctx, name, args, stderr, more)
	return s, s, rest, err
}

// openInterspersed is openFor with flags allowed after the arguments too
// ("suppress add +14155552671 --reason complaint"); it returns the arguments.
func openInterspersed(ctx context.Context, name string, args []string, stderr io.Writer, more func(*flag.FlagSet)) (nudge.Store, *Config, []string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.storeFlags(fs)
	if more != nil {
		more(fs)
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, err
	}
	s, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, &cfg, rest, nil
}

// parseInterspersed parses flags wherever they are among the arguments;
// after "--" everything is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		rem := fs.Args()
		if len(rem) == 0 {
			return rest, nil
		}
		if i := len(args) - len(rem); i > 0 && args[i-1] == "--" {
			return append(rest, rem...), nil
		}
		rest = append(rest, rem[0])
		args = rem[1:]
	}
}

// readPolicy reads and parses a policy file; problems are printed as
// file:line:col, and the error counts them.
func readPolicy(file string, stderr io.Writer) ([]byte, *policy.Policy, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.Parse(file, src)
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			fmt.Fprintln(stderr, pr.String())
		}
		if len(ve.Problems) == 1 {
			return nil, nil, fmt.Errorf("%s has a problem", file)
		}
		return nil, nil, fmt.Errorf("%s has %d problems", file, len(ve.Problems))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return src, p, nil
}

func policyValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("policy validate: give one policy file")
	}
	_, p, err := readPolicy(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", fs.Arg(0), summarize(p))
	return nil
}

// summarize says in a line what a policy holds.
func summarize(p *policy.Policy) string {
	var parts []string
	parts = append(parts, "time zone "+p.Timezone)
	if q := p.Quiet[nudge.ChannelSMS]; q != nil {
		parts = append(parts, "SMS "+q.Allow.String())
	}
	caps := make([]string, 0, len(p.Caps))
	for _, c := range p.Caps {
		if c.Region == "" {
			caps = append(caps, c.String())
		}
	}
	if len(caps) > 0 {
		parts = append(parts, strings.Join(caps, ", "))
	}
	parts = append(parts, "capped steps "+p.OnCap)
	return strings.Join(parts, "; ")
}

func policyPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, ps, rest, err := openPolicy(ctx, "policy publish", args, stderr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if len(rest) != 1 {
		return fmt.Errorf("policy publish: give one policy file")
	}
	src, _, err := readPolicy(rest[0], stderr)
	if err != nil {
		return fmt.Errorf("%w; nothing was published", err)
	}
	v, created, err := ps.PolicyPublish(ctx, src, "", nudge.SystemClock{}.Now())
	if err != nil {
		return fmt.Errorf("publish %s: %w", rest[0], err)
	}
	if created {
		fmt.Fprintf(stdout, "published policy v%d\n", v.Version)
	} else {
		fmt.Fprintf(stdout, "policy unchanged (v%d)\n", v.Version)
	}
	return nil
}

func policyShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var version string
	s, ps, rest, err := openPolicy(ctx, "policy show", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&version, "version", "", "a published version (default: the latest)")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if len(rest) != 0 {
		return fmt.Errorf("policy show: unexpected %q; use --version N", rest[0])
	}
	var v int64
	if version != "" {
		if v, err = parseVersion(version); err != nil {
			return err
		}
	}
	p, err := api.CurrentPolicy(ctx, ps, v)
	if err != nil {
		return err
	}
	if p.Default {
		fmt.Fprintln(stderr, "no policy was published: this is the built-in default")
	} else {
		fmt.Fprintf(stderr, "policy v%d, published %s, sha256 %s\n", p.Version, p.PublishedAt.UTC().Format(time.RFC3339), p.Hash)
	}
	_, err = io.WriteString(stdout, p.Source)
	return err
}

func policyVersions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, ps, _, err := openPolicy(ctx, "policy versions", args, stderr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	vs, err := ps.PolicyVersionList(ctx)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		fmt.Fprintln(stdout, "no policy was published: the built-in default applies (nudge policy show)")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tPUBLISHED\tSHA256")
	for _, v := range vs {
		fmt.Fprintf(w, "v%d\t%s\t%s\n", v.Version, v.PublishedAt.UTC().Format(time.RFC3339), v.Hash)
	}
	return w.Flush()
}

// policyDiff prints a unified diff of two versions: by default the latest
// against the one before (or the built-in default, when there is one version).
func policyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, ps, rest, err := openPolicy(ctx, "policy diff", args, stderr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if len(rest) > 2 {
		return fmt.Errorf("policy diff: give up to two versions: diff [V1 [V2]]")
	}
	latest, err := api.CurrentPolicy(ctx, ps, 0)
	if err != nil {
		return err
	}
	// version reads "default" as 0, the built-in default.
	version := func(s string) (int64, error) {
		if s == "default" || s == "0" || s == "v0" {
			return 0, nil
		}
		return parseVersion(s)
	}
	var v1, v2 int64
	switch len(rest) {
	case 0:
		if latest.Default {
			fmt.Fprintln(stdout, "no policy was published: nothing to compare")
			return nil
		}
		v1, v2 = latest.Version-1, latest.Version
	case 1:
		v2 = latest.Version
		if v1, err = version(rest[0]); err != nil {
			return err
		}
	case 2:
		if v1, err = version(rest[0]); err != nil {
			return err
		}
		if v2, err = version(rest[1]); err != nil {
			return err
		}
	}
	get := func(v int64) (*api.PolicyJSON, string, error) {
		if v == 0 {
			p := &api.PolicyJSON{Default: true, Source: api.DefaultPolicyYAML}
			return p, "built-in default", nil
		}
		p, err := api.CurrentPolicy(ctx, ps, v)
		if err != nil {
			return nil, "", err
		}
		return p, fmt.Sprintf("policy v%d (%s)", v, p.PublishedAt.UTC().Format(time.RFC3339)), nil
	}
	a, na, err := get(v1)
	if err != nil {
		return err
	}
	b, nb, err := get(v2)
	if err != nil {
		return err
	}
	d := unifiedDiff(na, nb, a.Source, b.Source, 3)
	if d == "" {
		fmt.Fprintf(stdout, "%s and %s are the same\n", na, nb)
		return nil
	}
	_, err = io.WriteString(stdout, d)
	return err
}

func runSuppress(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	var channel, reason, note string
	var limit int
	more := func(fs *flag.FlagSet) {
		fs.StringVar(&channel, "channel", "", "sms or email (default: email for addresses with an @, else sms)")
		switch what {
		case "add":
			fs.StringVar(&reason, "reason", nudge.SuppressDoNotContact, "why: "+strings.Join(nudge.SuppressionReasons, ", "))
			fs.StringVar(&note, "note", "", "a note for people")
		case "list":
			fs.IntVar(&limit, "limit", 0, "at most this many (default: all)")
		}
	}
	switch what {
	case "add", "remove", "list":
	default:
		fmt.Fprintln(stderr, suppressUsage)
		return errUsage
	}
	s, cfg, rest, err := openInterspersed(ctx, "suppress "+what, args, stderr, more)
	if err != nil {
		return err
	}
	defer s.Close()
	var fs nudge.PolicyFactStore = s
	n := &ingest.ContactNormalizer{DefaultRegion: cfg.DefaultRegion}
	channelOf := func(addr string) string {
		switch {
		case channel != "":
			return channel
		case strings.Contains(addr, "@"):
			return nudge.ChannelEmail
		}
		return nudge.ChannelSMS
	}
	switch what {
	case "add":
		if len(rest) == 0 {
			return fmt.Errorf("suppress add: give one or more addresses")
		}
		var ps []*nudge.SuppressionAddParams
		for _, a := range rest {
			p, err := api.SuppressionParams(n, channelOf(a), a, reason, note, nudge.SourceAdmin)
			if err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			ps = append(ps, p)
		}
		added, err := fs.SuppressionAdd(ctx, ps, nudge.SystemClock{}.Now())
		if err != nil {
			return err
		}
		for _, x := range added {
			fmt.Fprintf(stdout, "suppressed %s %s (%s)\n", x.Channel, x.AddressMasked, x.Reason)
		}
	case "remove":
		if len(rest) == 0 {
			return fmt.Errorf("suppress remove: give one or more addresses")
		}
		var failed int
		for _, a := range rest {
			ch := channelOf(a)
			p, err := api.SuppressionParams(n, ch, a, "", "", nudge.SourceAdmin)
			if err == nil {
				err = fs.SuppressionRemove(ctx, ch, p.Address)
			}
			if err != nil {
				if nudge.ErrorCode(err) == nudge.ENOTFOUND {
					err = fmt.Errorf("not on the %s suppression list", ch)
				}
				fmt.Fprintf(stderr, "%s: %v\n", a, err)
				failed++
				continue
			}
			fmt.Fprintf(stdout, "removed %s %s\n", ch, p.Address)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d addresses were not removed", failed, len(rest))
		}
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("suppress list: unexpected %q", rest[0])
		}
		if channel != "" && channel != nudge.ChannelSMS && channel != nudge.ChannelEmail {
			return fmt.Errorf("--channel %q: want sms or email", channel)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tCHANNEL\tADDRESS\tREASON\tSOURCE\tCREATED\tNOTE")
		p := &nudge.SuppressionListParams{Channel: channel, Limit: 1000}
		shown := 0
		for {
			list, err := fs.SuppressionList(ctx, p)
			if err != nil {
				return err
			}
			for _, x := range list {
				if limit > 0 && shown == limit {
					return w.Flush()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strconv.FormatInt(x.ID, 10), x.Channel, x.AddressMasked, x.Reason, x.Source,
					x.CreatedAt.UTC().Format(time.RFC3339), x.Note)
				shown++
			}
			if len(list) < p.Limit {
				break
			}
			p.AfterID = list[len(list)-1].ID
		}
		return w.Flush()
	}
	return nil
}
