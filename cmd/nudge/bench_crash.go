package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/postgres"
)

// The crash harness's journey: an email, a text and a follow-up email with
// short real-time waits between them, and a goal a fifth of the contacts
// reach while they are in it. Quiet hours are off and the caps high, so
// every contact who stays in the journey is sent all three.
const (
	crashJourneyID = "crash-harness"
	crashJourney   = `id: crash-harness
name: Crash harness
trigger: {event: crash.signup}
goal: {event: crash.converted}
steps:
  - id: welcome
    email: {template: crash-welcome}
  - id: pause
    wait: {for: 1s}
  - id: text
    sms: {template: crash-text, purpose: reminder}
  - id: pause2
    wait: {for: 1s}
  - id: followup
    email: {template: crash-followup}
`
	crashPolicy = `quiet_hours:
  sms: none
  email: none
caps:
  - {channel: sms, limit: 1000, per: 24h}
  - {channel: email, limit: 1000, per: 24h}
`
)

var crashTemplates = map[string]string{
	"crash-welcome.email.liquid":  "Subject: Welcome\n\nWelcome. ref:{{ message.id }}/{{ message.step_id }}\n",
	"crash-followup.email.liquid": "Subject: How is it going?\n\nA follow-up. ref:{{ message.id }}/{{ message.step_id }}\n",
	"crash-text.sms.liquid":       "Nudge crash test ref:{{ message.id }}/{{ message.step_id }} Reply STOP to opt out.",
}

// crashSendSteps are the journey's send steps and their channels.
var crashSendSteps = map[string]string{"welcome": nudge.ChannelEmail, "text": nudge.ChannelSMS, "followup": nudge.ChannelEmail}

// crashOptions are bench crash's flags.
type crashOptions struct {
	db       string
	contacts int
	kills    int
	seed     uint64
	minUp    time.Duration
	maxUp    time.Duration
	lease    time.Duration
	rate     int
	batch    int
	drain    time.Duration
	dir      string
	quiet    bool
	nodes    int  // servers sharing the database (bench nodes); 1 for bench crash
	keepDB   bool // keep a PostgreSQL run's schema for a look afterwards
}

func benchCrashFlags(args []string, stderr io.Writer) (*crashOptions, error) {
	o := &crashOptions{nodes: 1}
	fs := flag.NewFlagSet("bench crash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.db, "db", "", "database: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir); it is emptied first only when new")
	fs.IntVar(&o.contacts, "contacts", 10_000, "contacts driven through the journey (one trigger event each)")
	fs.IntVar(&o.kills, "kills", 50, "SIGKILLs, at least; killing goes on while events are coming in or work is left")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed (the run prints it)")
	fs.DurationVar(&o.minUp, "min-up", 200*time.Millisecond, "shortest time a started server lives before a timed kill")
	fs.DurationVar(&o.maxUp, "max-up", 3*time.Second, "longest time a started server lives before a timed kill")
	fs.DurationVar(&o.lease, "lease", 3*time.Second, "serve --lease: how soon a killed server's claims expire")
	fs.IntVar(&o.rate, "rate", 0, "trigger events per second (default: spread over the kills)")
	fs.IntVar(&o.batch, "batch", 100, "events per /v1/batch request")
	fs.DurationVar(&o.drain, "drain-timeout", 20*time.Minute, "how long the last server may take to finish the work")
	fs.StringVar(&o.dir, "dir", "", "keep the run's files (server log, templates) here (default: a temp dir, removed)")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the result")
	fs.BoolVar(&o.keepDB, "keep-db", false, "PostgreSQL: keep the run's schema (its name is printed) instead of dropping it")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if o.contacts < 1 || o.kills < 0 || o.batch < 1 || o.minUp <= 0 || o.maxUp < o.minUp {
		fmt.Fprintln(stderr, "bench crash: --contacts and --batch must be positive, --kills not negative, 0 < --min-up ≤ --max-up")
		return nil, errUsage
	}
	if o.rate == 0 {
		up := (o.minUp + o.maxUp) / 2
		o.rate = max(50, int(float64(o.contacts)/(float64(max(o.kills, 1))*up.Seconds())))
	}
	return o, nil
}

func benchCrash(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := benchCrashFlags(args, stderr)
	if err != nil {
		return err
	}
	r, err := runCrash(ctx, o, stdout)
	if r != nil {
		r.print(stdout)
	}
	if err != nil {
		return err
	}
	problems := r.problems()
	if r.kills < o.kills {
		problems = append(problems, fmt.Sprintf("killed %d times, fewer than --kills %d", r.kills, o.kills))
	}
	if len(problems) > 0 {
		return fmt.Errorf("crash safety: %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Fprintln(stdout, "PASS: no duplicate, nothing lost, every message in one final state")
	return nil
}

// crashRun is one run of the harness: the server, its sinks, and the
// figures.
type crashRun struct {
	o     *crashOptions
	rnd   *rand.Rand
	out   io.Writer
	node  *node   // the one the crash harness kills: nodes[0]
	nodes []*node // every server on the database
	sms   *smsSink
	mail  *mailSink
	key   string

	mu    sync.Mutex
	kills map[string]int // by kind
	armed string         // "sms", "email" or "ingest": the next such call kills the server
	armN  int            // … after this many more calls

	acked     atomic.Int64 // trigger events the API confirmed stored
	converts  atomic.Int64 // goal events confirmed stored
	retries   atomic.Int64 // batch requests that failed (server down) and were sent again
	rejected  atomic.Int64 // events the API refused: a harness bug
	ingestEnd chan struct{}
}

// runCrash sets everything up, drives and kills the server, lets a last
// server finish, and checks the store against the sinks.
func runCrash(ctx context.Context, o *crashOptions, out io.Writer) (*crashResult, error) {
	dir, cleanup, err := runDir(o.dir, "nudge-crash-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if o.db == "" {
		o.db = filepath.Join(dir, "crash.db")
	}
	c := &crashRun{o: o, rnd: rand.New(rand.NewPCG(o.seed, o.seed^0x5eed)), out: out,
		kills: map[string]int{}, ingestEnd: make(chan struct{})}
	drop, err := c.freshDB(ctx)
	if err != nil {
		return nil, err
	}
	if !o.keepDB {
		defer drop()
	}
	if o.quiet {
		c.out = io.Discard
	}
	kind := "SQLite"
	if isPostgres(o.db) {
		kind = "PostgreSQL"
	}
	fmt.Fprintf(c.out, "nudge bench crash: %s, %d contacts, ≥ %d kills, %d events/s, lease %s, seed %d\n",
		kind, o.contacts, o.kills, o.rate, o.lease, o.seed)

	if err := c.setup(ctx, dir); err != nil {
		return nil, err
	}
	defer c.sms.close()
	defer c.mail.close()

	start := time.Now()
	if err := c.killLoop(ctx); err != nil {
		return nil, err
	}
	killed := time.Since(start)
	fmt.Fprintf(c.out, "  %d kills in %s; draining with one last server…\n", c.totalKills(), killed.Round(time.Second))
	if err := c.node.start(ctx, time.Minute); err != nil {
		return nil, err
	}
	drainErr := c.waitDrained(ctx)
	c.node.stop()
	if drainErr != nil {
		fmt.Fprintf(c.out, "  not drained: %v\n", drainErr)
	}
	res, err := c.verify(ctx)
	if err != nil {
		return nil, err
	}
	res.took, res.killPhase = time.Since(start), killed
	if drainErr != nil {
		res.other = append(res.other, drainErr.Error())
	}
	res.other = append(res.other, c.scanLog(filepath.Join(dir, "serve.log"))...)
	return res, nil
}

// setup writes the journey, policy, templates and contacts, prepares the
// database with the CLI's own commands, and starts the sinks.
func (c *crashRun) setup(ctx context.Context, dir string) error {
	tdir := filepath.Join(dir, "templates")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return err
	}
	for name, text := range crashTemplates {
		if err := os.WriteFile(filepath.Join(tdir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	files := map[string]string{"journey.yaml": crashJourney, "policy.yaml": crashPolicy}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	csv := filepath.Join(dir, "contacts.csv")
	if err := writeCrashContacts(csv, c.o.contacts); err != nil {
		return err
	}
	var msgs bytes.Buffer
	for _, args := range [][]string{
		{"policy", "publish", "--db", c.o.db, filepath.Join(dir, "policy.yaml")},
		{"journey", "publish", "--db", c.o.db, "--templates", tdir, filepath.Join(dir, "journey.yaml")},
		{"import", "contacts", "--db", c.o.db, "--quiet", csv},
	} {
		if err := run(ctx, args, &msgs, &msgs); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args[:2], " "), err, msgs.String())
		}
	}
	s, err := openStore(ctx, c.o.db)
	if err != nil {
		return err
	}
	key, token := nudge.NewAPIKey(nudge.RoleAdmin, "bench crash", time.Now())
	err = s.APIKeyCreate(ctx, key)
	s.Close()
	if err != nil {
		return err
	}
	c.key = token

	if c.sms, err = startSMSSink(); err != nil {
		return err
	}
	if c.mail, err = startMailSink(); err != nil {
		return err
	}
	c.sms.onCall, c.mail.onCall = c.onCall, c.onCall
	for i := range max(c.o.nodes, 1) {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		name := "serve"
		if c.o.nodes > 1 {
			name = fmt.Sprintf("serve-%d", i+1)
		}
		logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, &node{name: name, addr: addr, log: logf,
			args: []string{"--db", c.o.db, "--templates", tdir, "--lease", c.o.lease.String(), "--log-format", "json"},
			env: []string{
				"NUDGE_TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000", "NUDGE_TWILIO_AUTH_TOKEN=crash-harness-token",
				"NUDGE_TWILIO_BASE_URL=" + c.sms.url, "NUDGE_SMS_FROM=+15005550006",
				"NUDGE_SMTP_URL=smtp://" + c.mail.addr + "?tls=none", "NUDGE_EMAIL_FROM=crash@nudge.test",
				"NUDGE_WEBHOOK_SECRET=crash-harness-webhook-secret", "NUDGE_PUBLIC_URL=",
			}})
	}
	c.node = c.nodes[0]
	fmt.Fprintf(c.out, "  set up: %d contacts imported with SMS consent, journey and policy published\n", c.o.contacts)
	return nil
}

// runDir returns dir, made if need be, or a new temporary directory that
// cleanup removes.
func runDir(dir, prefix string) (_ string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// freshDB gives a PostgreSQL run a schema of its own: o.db gets its
// search_path. The function it returns drops the schema.
func (c *crashRun) freshDB(ctx context.Context) (drop func(), err error) {
	if !isPostgres(c.o.db) {
		return func() {}, nil
	}
	u, err := url.Parse(c.o.db)
	if err != nil {
		return nil, fmt.Errorf("--db: %w", err)
	}
	admin, err := postgres.Open(ctx, c.o.db)
	if err != nil {
		return nil, err
	}
	schema := "nudge_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := admin.CreateSchema(ctx, schema); err != nil {
		admin.Close()
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	c.o.db = u.String()
	fmt.Fprintf(c.out, "  PostgreSQL schema %s\n", schema)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin.DropSchema(ctx, schema); err != nil {
			fmt.Fprintf(os.Stderr, "nudge bench: could not drop schema %s: %v\n", schema, err)
		}
		admin.Close()
	}, nil
}

func writeCrashContacts(path string, n int) error {
	var b bytes.Buffer
	b.WriteString("id,email,phone,timezone,lifecycle_stage,sms_consent\n")
	for i := range n {
		fmt.Fprintf(&b, "c%d,p%d@example.com,+1415%07d,America/Los_Angeles,lead,opted_in\n", i, i, 2000000+i)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// converts reports whether contact i reaches the goal (a fifth of them).
func converts(i int) bool { return i%5 == 0 }

// onCall is the sinks' hook: when armed for this kind of call, the server
// is killed while the call is in flight, before the sink answers it.
func (c *crashRun) onCall(kind string) {
	c.mu.Lock()
	fire := c.armed == kind && c.armN <= 1
	if c.armed == kind {
		c.armN--
	}
	if fire {
		c.armed = ""
	}
	c.mu.Unlock()
	if fire {
		c.kill("mid-" + kind + "-call")
	}
}

func (c *crashRun) kill(kind string) {
	if c.node.kill() {
		c.mu.Lock()
		c.kills[kind]++
		c.mu.Unlock()
	}
}

func (c *crashRun) totalKills() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.kills {
		n += k
	}
	return n
}

// killLoop starts the server, kills it at a random moment (a timer, or
// during a provider call or an ingest request), and starts it again, until
// it has been killed o.kills times, every event is in, and (checked every
// five kills) no work is left.
func (c *crashRun) killLoop(ctx context.Context) error {
	driver := make(chan error, 1)
	go func() { driver <- c.drive(ctx) }()
	s, err := openExisting(ctx, c.o.db)
	if err != nil {
		return err
	}
	defer s.Close()
	ingesting, drained := true, false
	for ingesting || c.totalKills() < c.o.kills || !drained {
		if err := c.node.start(ctx, time.Minute); err != nil {
			return err
		}
		up := c.o.minUp + time.Duration(c.rnd.Int64N(int64(c.o.maxUp-c.o.minUp)+1))
		c.mu.Lock()
		switch c.rnd.IntN(4) {
		case 0:
			c.armed, c.armN = "sms", 1+c.rnd.IntN(40)
		case 1:
			c.armed, c.armN = "email", 1+c.rnd.IntN(40)
		case 2:
			if ingesting {
				c.armed, c.armN = "ingest", 1+c.rnd.IntN(5)
			}
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			c.node.kill()
			return ctx.Err()
		case <-c.node.done():
		case <-time.After(up):
			c.kill("timer")
		case err := <-driver:
			if err != nil {
				c.node.kill()
				return err
			}
			ingesting = false
			c.kill("timer")
		}
		<-c.node.done()
		c.mu.Lock()
		c.armed = ""
		c.mu.Unlock()
		if c.node.exitedOnItsOwn() {
			return errors.New("the server exited without being killed; see serve.log")
		}
		n := c.totalKills()
		if n%10 == 0 {
			fmt.Fprintf(c.out, "  %d kills, %d/%d trigger events in\n", n, c.acked.Load(), c.o.contacts)
		}
		if !ingesting && n >= c.o.kills && n%5 == 0 {
			// Killing goes on while there is work: the last server only
			// finishes what the last kill left.
			if _, drained, err = c.drainState(ctx, s, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// drive sends every contact's trigger event (and a fifth of them their
// goal event a few batches later) at o.rate, retrying a batch whose answer
// did not come (the server was down) until it is confirmed: the same
// messageIds, so a batch stored before the kill is not stored twice.
func (c *crashRun) drive(ctx context.Context) error {
	defer close(c.ingestEnd)
	client := &http.Client{Timeout: 30 * time.Second}
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, "http://"+n.addr+"/v1/batch")
	}
	interval := time.Duration(float64(time.Second) * float64(c.o.batch) / float64(c.o.rate))
	type goal struct {
		item string
		at   time.Time
	}
	var pending []goal // goal events, sent 1.5 s after their trigger, while most are in the journey
	next := time.Now()
	for lo := 0; lo < c.o.contacts || len(pending) > 0; lo += c.o.batch {
		var items []string
		now := time.Now()
		for i := lo; i < min(lo+c.o.batch, c.o.contacts); i++ {
			items = append(items, fmt.Sprintf(`{"type":"track","userId":"c%d","event":"crash.signup","messageId":"crash-signup-%d"}`, i, i))
			if converts(i) {
				pending = append(pending, goal{fmt.Sprintf(`{"type":"track","userId":"c%d","event":"crash.converted","messageId":"crash-goal-%d"}`, i, i), now.Add(1500 * time.Millisecond)})
			}
		}
		triggers := len(items)
		for len(pending) > 0 && !pending[0].at.After(now) {
			items = append(items, pending[0].item)
			pending = pending[1:]
		}
		if len(items) > 0 {
			k := lo / c.o.batch % len(urls)
			if err := c.post(ctx, client, slices.Concat(urls[k:], urls[:k]), `{"batch":[`+strings.Join(items, ",")+`]}`, triggers, len(items)-triggers); err != nil {
				return err
			}
		}
		next = next.Add(interval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// post sends a batch to the first of urls, and on failure to the next
// (round the list: urls are the nodes, from the one this batch goes to).
func (c *crashRun) post(ctx context.Context, client *http.Client, urls []string, body string, triggers, goals int) error {
	for attempt := 0; ; attempt++ {
		url := urls[attempt%len(urls)]
		c.mu.Lock()
		fire := c.armed == "ingest"
		if fire {
			c.armN--
			fire = c.armN <= 0
			if fire {
				c.armed = ""
			}
		}
		c.mu.Unlock()
		if fire {
			// Kill while this batch is on its way in: parsed, in its
			// transaction, or answered.
			d := time.Duration(rand.Int64N(int64(20 * time.Millisecond))) // not c.rnd: this is the driver goroutine
			go func() {
				time.Sleep(d)
				c.kill("mid-ingest")
			}()
		}
		req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			var out struct {
				Stored     *int `json:"stored"`
				Duplicates *int `json:"duplicates"`
				Errors     []struct {
					Index   int    `json:"index"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && derr == nil {
				if len(out.Errors) > 0 {
					c.rejected.Add(int64(len(out.Errors)))
					return fmt.Errorf("the API refused %d events: %s", len(out.Errors), out.Errors[0].Message)
				}
				c.acked.Add(int64(triggers))
				c.converts.Add(int64(goals))
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.retries.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// scanLog reports panics and fatal errors in the servers' log.
func (c *crashRun) scanLog(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{"server log: " + err.Error()}
	}
	var out []string
	for _, bad := range []string{"panic:", "fatal error:", "DATA RACE", "database disk image is malformed"} {
		if n := bytes.Count(data, []byte(bad)); n > 0 {
			out = append(out, fmt.Sprintf("server log: %d × %q", n, bad))
		}
	}
	return out
}
