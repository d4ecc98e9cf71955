package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudge/nudge"
)

// openFor parses a command's store flags and opens the store.
func openFor(ctx context.Context, name string, args []string, stderr io.Writer, more func(*flag.FlagSet)) (nudge.Store, *Config, *flag.FlagSet, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.storeFlags(fs)
	if more != nil {
		more(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, errUsage
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, err
	}
	s, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, &cfg, fs, nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, cfg, _, err := openFor(ctx, "migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if v, ok := s.(versioned); ok {
		n, err := v.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "database %s is at schema version %d\n", redactURL(cfg.DB), n)
	}
	return nil
}

func runAPIKey(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	var role, name string
	more := func(fs *flag.FlagSet) {
		if what == "create" {
			fs.StringVar(&role, "role", "", "admin, ingest (identify/track/batch only) or read (no writes)")
			fs.StringVar(&name, "name", "", "a name to recognise the key by")
		}
	}
	switch what {
	case "create", "list", "revoke":
	default:
		fmt.Fprintln(stderr, "usage: nudge apikey create --role admin|ingest|read [--name NAME] | list | revoke ID")
		return errUsage
	}
	s, _, fs, err := openFor(ctx, "apikey "+what, args, stderr, more)
	if err != nil {
		return err
	}
	defer s.Close()
	now := nudge.SystemClock{}.Now()
	switch what {
	case "create":
		if !slices.Contains(nudge.Roles, role) {
			return fmt.Errorf("--role %q: want one of %s", role, strings.Join(nudge.Roles, ", "))
		}
		k, token := nudge.NewAPIKey(role, name, now)
		if err := s.APIKeyCreate(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created %s key %s; it is shown only this once:\n", role, k.ID)
		fmt.Fprintln(stdout, token)
	case "list":
		keys, err := s.APIKeyList(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tROLE\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, k.Name, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return w.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("apikey revoke: give one key ID (see nudge apikey list)")
		}
		if err := s.APIKeyRevoke(ctx, fs.Arg(0), now); err != nil {
			return fmt.Errorf("revoke %s: %w", fs.Arg(0), err)
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
	}
	return nil
}

func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var retention time.Duration
	s, _, _, err := openFor(ctx, "events prune", args, stderr, func(fs *flag.FlagSet) {
		fs.DurationVar(&retention, "retention", DefaultConfig().EventRetention, "delete events received longer ago than this (at least 24h)")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if retention < minRetention {
		return fmt.Errorf("--retention %s: must be at least %s, the messageId deduplication window", retention, minRetention)
	}
	n, err := s.EventPrune(ctx, nudge.SystemClock{}.Now().Add(-retention))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pruned %d events received before %s ago\n", n, retention)
	return nil
}
