package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// benchNodes runs the crash harness's journey on 1, 2, … n `nudge serve`
// processes sharing one PostgreSQL database: the same contacts each time,
// events spread over the nodes, and the same checks (nothing processed
// twice, nothing lost). It prints the throughput of each size, then kills
// one node of the largest in the middle of a run and checks that what it
// had claimed is finished by the others once its lease expires.
func benchNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", os.Getenv("NUDGE_TEST_POSTGRES"), "PostgreSQL server URL (each run gets a fresh schema)")
	contacts := fs.Int("contacts", 5000, "contacts per run")
	most := fs.Int("nodes", 3, "the most nodes; runs 1, 2, … this many")
	lease := fs.Duration("lease", 10*time.Second, "serve --lease")
	kill := fs.Bool("kill", true, "then kill one node mid-run")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if !isPostgres(*db) {
		fmt.Fprintln(stderr, "bench nodes: --db must be a postgres:// URL: several nodes share PostgreSQL, not SQLite")
		return errUsage
	}
	fmt.Fprintf(stdout, "nudge bench nodes: PostgreSQL, %d contacts per run (3 messages each), lease %s\n", *contacts, *lease)
	var problems []string
	var base float64
	for n := 1; n <= *most; n++ {
		r, took, err := runNodes(ctx, *db, n, *contacts, *lease, false, stdout)
		if err != nil {
			return err
		}
		rate := float64(r.decisions) / took.Seconds()
		if n == 1 {
			base = rate
		}
		fmt.Fprintf(stdout, "  %d node(s): %6.0f decisions/s, %6.0f messages/s, %5.0f contacts through/s (%d decisions, %d messages in %s): ×%.2f one node\n",
			n, rate, float64(r.totalMessages())/took.Seconds(), float64(*contacts)/took.Seconds(), r.decisions, r.totalMessages(),
			took.Round(100*time.Millisecond), rate/base)
		problems = append(problems, prefixed(fmt.Sprintf("%d nodes: ", n), r.problems())...)
	}
	if *kill && *most > 1 {
		r, took, err := runNodes(ctx, *db, *most, *contacts, *lease, true, stdout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %d nodes, one killed mid-run: finished in %s; outcome_unknown %d\n", *most, took.Round(100*time.Millisecond), r.unknown())
		r.print(stdout)
		problems = append(problems, prefixed("one node killed: ", r.problems())...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("several nodes: %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Fprintln(stdout, "PASS: no enrollment transition and no message processed twice, nothing lost")
	return nil
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// runNodes is one run on n nodes: it returns the checks and the time from
// the first event to the last message settled. With killOne, the last node
// is killed (and not restarted) once a third of the messages are out.
func runNodes(ctx context.Context, db string, n, contacts int, lease time.Duration, killOne bool, stdout io.Writer) (*crashResult, time.Duration, error) {
	dir, err := os.MkdirTemp("", "nudge-nodes-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	o := &crashOptions{db: db, contacts: contacts, nodes: n, lease: lease, rate: 1_000_000, batch: 100,
		drain: 20 * time.Minute, quiet: true, seed: 1}
	c := &crashRun{o: o, out: io.Discard, kills: map[string]int{}, ingestEnd: make(chan struct{})}
	drop, err := c.freshDB(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer drop()
	if err := c.setup(ctx, dir); err != nil {
		return nil, 0, err
	}
	defer c.sms.close()
	defer c.mail.close()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = nd.start(ctx, time.Minute) })
	}
	wg.Wait()
	defer func() {
		for _, nd := range c.nodes {
			nd.stop()
		}
	}()
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	start := time.Now()
	if killOne {
		victim := c.nodes[n-1]
		go func() {
			want := contacts // a third of the 3 messages per contact
			for c.sms.got()+c.mail.got() < want {
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			if victim.kill() {
				c.mu.Lock()
				c.kills["node"]++
				c.mu.Unlock()
				fmt.Fprintf(stdout, "  killed %s after %s, with %d messages out\n", victim.name, time.Since(start).Round(100*time.Millisecond), c.sms.got()+c.mail.got())
			}
		}()
	}
	if err := c.drive(ctx); err != nil {
		return nil, 0, err
	}
	if err := c.waitDrained(ctx); err != nil {
		return nil, 0, err
	}
	took := time.Since(start)
	for _, nd := range c.nodes {
		nd.stop()
		if nd.exitedOnItsOwn() {
			return nil, 0, fmt.Errorf("%s exited on its own; see its log", nd.name)
		}
	}
	r, err := c.verify(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, nd := range c.nodes {
		r.other = append(r.other, c.scanLog(dir+"/"+nd.name+".log")...)
	}
	return r, took, nil
}

// got is how many messages the sink has received.
func (r *received) got() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

func (r *crashResult) totalMessages() int {
	n := 0
	for _, st := range r.messages {
		for _, k := range st {
			n += k
		}
	}
	return n
}
