// Command nudge is Nudge's one binary: the server, and the commands that
// migrate its database, import a CRM export, manage API keys and measure it.
//
//	nudge serve                      run the server (SQLite in ./nudge.db by default)
//	nudge serve --demo               the same, with the examples and weeks of history (nudge-demo.db)
//	nudge migrate                    bring the database schema up to date
//	nudge import contacts FILE.csv   import a CRM export
//	nudge apikey create --role ROLE  create an API key (admin, ingest or read)
//	nudge apikey list | revoke ID
//	nudge events prune               delete events older than the retention
//	nudge bench ingest|import        measure ingest and import
//	nudge bench crash|nodes|soak     kill the server, run several, load it; check what it did
//	nudge journey validate|publish   check and publish journey files
//	nudge policy validate|publish    check and publish the workspace policy
//	nudge suppress add|remove|list   the suppression list
//	nudge explain CONTACT            why a contact did or did not get a message
//	nudge simulate                   replay a timeline against journeys on a virtual clock
//	nudge demo                       play the examples
//	nudge template preview NAME      render a template with a stored contact
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // a fresh machine may have no zoneinfo; time zones must still validate
)

const usage = `nudge: journey orchestration from CRM context

Usage:
  nudge serve [flags]                    run the server
  nudge serve --demo                     the server with the examples and weeks of history (nudge-demo.db)
  nudge migrate [flags]                  bring the database schema up to date
  nudge import contacts [flags] FILE.csv import a CRM export ("-" reads stdin)
  nudge apikey create --role admin|ingest|read [--name NAME]
  nudge apikey list
  nudge apikey revoke ID
  nudge user create --email EMAIL --role admin|editor|viewer [--password-stdin] | list
  nudge events prune [--retention 2160h]  delete events older than the retention
  nudge bench ingest [flags]             ingest throughput over HTTP vs raw store
  nudge bench import [flags]             CSV import rate and peak memory
  nudge bench crash [flags]              SIGKILL the server again and again; check nothing is lost or sent twice
  nudge bench nodes --db postgres://…    1, 2, 3 servers on one PostgreSQL: throughput, and one killed
  nudge bench soak [flags]               a steady load, then a burst: figures per minute, then the checks
  nudge journey validate|publish FILE... check or publish journey files
  nudge journey list|pause|resume|archive|diff|schema
  nudge policy validate|publish FILE     check or publish the workspace policy
  nudge policy show [--version N] | versions | diff [V1 [V2]]
  nudge suppress add|remove ADDRESS... | list
                                         the do-not-contact list (email or phone)
  nudge explain CONTACT [--journey J] [--since T] [--json]
  nudge explain --message ID             why / why not: decisions and messages
  nudge simulate --journey FILE --contacts FILE.csv --events FILE.jsonl
                                         replay a timeline on a virtual clock
  nudge report JOURNEY [--from T] [--to T] [--version N] [--csv]
  nudge report --overview                funnel, lift, attribution, opt-outs
  nudge demo                             play the four examples of examples/
  nudge template preview NAME --contact ID [--channel email|sms] [--templates DIR]
                                         render a template with a real contact
  nudge version

Every command takes --db (or NUDGE_DB): a SQLite file path (default nudge.db)
or a postgres:// URL. Run "nudge COMMAND -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "nudge:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// run dispatches a command line. It is what main calls, and what tests call.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string) {
		if len(rest) == 0 {
			return "", nil
		}
		return rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "import":
		what, r := sub()
		if what != "contacts" {
			fmt.Fprintln(stderr, "usage: nudge import contacts [flags] FILE.csv")
			return errUsage
		}
		return runImportContacts(ctx, r, stdout, stderr)
	case "apikey":
		what, r := sub()
		return runAPIKey(ctx, what, r, stdout, stderr)
	case "user":
		what, r := sub()
		return runUser(ctx, what, r, os.Stdin, stdout, stderr)
	case "events":
		what, r := sub()
		if what != "prune" {
			fmt.Fprintln(stderr, "usage: nudge events prune [--retention DURATION]")
			return errUsage
		}
		return runPrune(ctx, r, stdout, stderr)
	case "bench":
		what, r := sub()
		return runBench(ctx, what, r, stdout, stderr)
	case "journey":
		what, r := sub()
		return runJourney(ctx, what, r, stdout, stderr)
	case "policy":
		what, r := sub()
		return runPolicy(ctx, what, r, stdout, stderr)
	case "suppress":
		what, r := sub()
		return runSuppress(ctx, what, r, stdout, stderr)
	case "explain":
		return runExplain(ctx, rest, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, stdout, stderr)
	case "report":
		return runReport(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "template":
		what, r := sub()
		return runTemplate(ctx, what, r, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "nudge", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "nudge: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}
