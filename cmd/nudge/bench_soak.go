package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
)

// soakOptions are bench soak's flags.
type soakOptions struct {
	db         string
	rate       int
	duration   time.Duration
	interval   time.Duration
	burstX     int
	burstFor   time.Duration
	ingestRate float64
	dir        string
	faultAt    time.Duration // when to run faultCmd (0: never)
	faultCmd   string        // a shell command that breaks and mends the database: a restart
}

// benchSoak drives the real server (a child process) at a steady rate of
// trigger events for a while, then at a multiple of it for a burst, and
// prints per interval what went in and out, the p99 latencies, the errors
// and the server's RSS; then it waits for the queue to drain and runs the
// crash harness's checks (nothing lost, nothing twice).
func benchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := &soakOptions{}
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.db, "db", "", "database: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir)")
	fs.IntVar(&o.rate, "rate", 50, "steady trigger events a second (each sends 2 emails and 1 SMS)")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the steady phase lasts")
	fs.DurationVar(&o.interval, "interval", time.Minute, "how often a line of figures is printed")
	fs.IntVar(&o.burstX, "burst", 10, "the burst's rate, as a multiple of --rate (0: no burst)")
	fs.DurationVar(&o.burstFor, "burst-for", 30*time.Second, "how long the burst lasts")
	fs.Float64Var(&o.ingestRate, "ingest-rate", 0, "serve --ingest-rate, in requests a second (default: 5× the steady request rate, so that the burst meets it)")
	fs.StringVar(&o.dir, "dir", "", "keep the run's files here (default: a temp dir, removed)")
	fs.DurationVar(&o.faultAt, "fault-at", 0, "when to run --fault-cmd, from the start of the load")
	fs.StringVar(&o.faultCmd, "fault-cmd", "", `a shell command run at --fault-at to break the database for a while, e.g. "pg_ctlcluster --skip-systemctl-redirect 15 main restart"; 503s are then expected, not errors`)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if o.rate < 1 || o.duration <= 0 || o.interval <= 0 || o.burstX < 0 {
		fmt.Fprintln(stderr, "bench soak: --rate, --duration and --interval must be positive")
		return errUsage
	}
	r, err := runSoak(ctx, o, stdout)
	if err != nil {
		return err
	}
	if p := r.problems(); len(p) > 0 {
		return fmt.Errorf("soak: %d problems:\n  %s", len(p), strings.Join(p, "\n  "))
	}
	fmt.Fprintln(stdout, "PASS: no errors, queue drained, nothing lost, nothing twice")
	return nil
}

// soakWindow is what one interval saw.
type soakWindow struct {
	events, requests, limited, unavailable, errors, messages int
	ingest, toEmail                                          []time.Duration
}

// soakResult is a soak's figures and checks.
type soakResult struct {
	*crashResult
	errors, limited, unavailable int
	retryAfter                   bool      // every 429 carried Retry-After
	fault                        bool      // a fault was made: 503s are expected
	heapUnread                   int       // intervals whose live heap could not be read
	rss                          []float64 // live heap after a collection per interval (anonymous RSS where it cannot be read), MB
	steady                       int       // intervals in the steady phase
	limitExpected                bool
}

// memoryGrowth reports a growth trend of the server's memory (the live
// heap after a collection, read from its --debug-addr profiles) over the
// steady phase: the second half's mean above the first half's by
// more than a quarter and 20 MB. The first interval (start-up) is left
// out. Fewer than 5 intervals say nothing.
func (r *soakResult) memoryGrowth() (grew bool, first, second float64) {
	n := min(r.steady, len(r.rss))
	if n < 5 {
		return false, 0, 0
	}
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	first, second = mean(r.rss[1:1+(n-1)/2]), mean(r.rss[1+(n-1)/2:n])
	return second > first*1.25 && second-first > 20, first, second
}

func (r *soakResult) problems() []string {
	p := r.crashResult.problems()
	if r.errors > 0 {
		p = append(p, fmt.Sprintf("%d ingest errors (answers other than 200 and 429, or no answer)", r.errors))
	}
	if r.limitExpected && r.limited == 0 {
		p = append(p, "the burst never met the ingest limit: no 429")
	}
	if r.unavailable > 0 && !r.fault {
		p = append(p, fmt.Sprintf("%d answers 503 with no fault made", r.unavailable))
	}
	if r.limited > 0 && !r.retryAfter {
		p = append(p, "a 429 without Retry-After")
	}
	if r.heapUnread > 0 {
		p = append(p, fmt.Sprintf("the server's live heap could not be read in %d intervals (its --debug-addr profiles)", r.heapUnread))
	}
	if grew, first, second := r.memoryGrowth(); grew {
		p = append(p, fmt.Sprintf("the server's live heap grew over the steady phase: %.0f MB on average in its first half, %.0f MB in its second", first, second))
	}
	return p
}

type soakRun struct {
	*crashRun
	o         *soakOptions
	debugAddr string // the server's --debug-addr
	batch     int
	start     time.Time
	acked     []atomic.Int64 // when each contact's trigger was confirmed (unix ns)

	mu          sync.Mutex
	win         soakWindow
	errors      int
	limited     int
	unavailable int
	retryAfter  bool
}

func runSoak(ctx context.Context, o *soakOptions, stdout io.Writer) (*soakResult, error) {
	dir, cleanup, err := runDir(o.dir, "nudge-soak-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	batch := max(1, o.rate/10) // 10 requests a second at the steady rate
	if o.ingestRate == 0 && o.burstX > 0 {
		o.ingestRate = 5 * float64(o.rate) / float64(batch)
	}
	contacts := int(float64(o.rate)*(o.duration.Seconds()+float64(o.burstX)*o.burstFor.Seconds())) + o.rate
	co := &crashOptions{db: o.db, contacts: contacts, nodes: 1, lease: 10 * time.Second, drain: 20 * time.Minute, seed: 1}
	if co.db == "" {
		co.db = dir + "/soak.db"
	}
	s := &soakRun{crashRun: &crashRun{o: co, out: stdout, kills: map[string]int{}, ingestEnd: make(chan struct{})},
		o: o, batch: batch, acked: make([]atomic.Int64, contacts), retryAfter: true}
	drop, err := s.freshDB(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	fmt.Fprintf(stdout, "nudge bench soak: %s, %d events/s for %s, then %d× for %s; ingest limit %.0f requests/s (%d events per request)\n",
		map[bool]string{true: "PostgreSQL", false: "SQLite"}[isPostgres(co.db)], o.rate, o.duration, o.burstX, o.burstFor, o.ingestRate, batch)
	if err := s.setup(ctx, dir); err != nil {
		return nil, err
	}
	defer s.sms.close()
	defer s.mail.close()
	if o.ingestRate > 0 {
		s.node.args = append(s.node.args, "--ingest-rate", strconv.FormatFloat(o.ingestRate, 'f', -1, 64))
	}
	if s.debugAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	s.node.args = append(s.node.args, "--debug-addr", s.debugAddr)
	s.mail.onReceive = s.received
	s.sms.onReceive = func(string, string, time.Time) { s.count(func(w *soakWindow) { w.messages++ }) }
	if err := s.node.start(ctx, time.Minute); err != nil {
		return nil, err
	}
	defer s.node.stop()

	res := &soakResult{limitExpected: o.burstX > 0 && o.ingestRate > 0, fault: o.faultCmd != ""}
	s.start = time.Now()
	done := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Go(func() { res.rss, res.heapUnread = s.report(ctx, done) })
	if o.faultCmd != "" {
		reporter.Go(func() { s.fault(ctx, done) })
	}
	err = s.produce(ctx)
	close(done)
	reporter.Wait()
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout, "  events all in; waiting for the queue to drain…")
	t := time.Now()
	if err := s.waitDrained(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "  drained %s after the last event\n", time.Since(t).Round(time.Second))
	s.node.stop()
	if s.node.exitedOnItsOwn() {
		return nil, fmt.Errorf("the server exited on its own; see its log")
	}
	cr, err := s.verify(ctx)
	if err != nil {
		return nil, err
	}
	cr.other = append(cr.other, s.scanLog(dir+"/serve.log")...)
	res.crashResult = cr
	if res.fault {
		cr.faults = 1
	}
	res.errors, res.limited, res.unavailable, res.retryAfter = s.errors, s.limited, s.unavailable, s.retryAfter
	cr.print(stdout)
	fmt.Fprintf(stdout, "  ingest: %d errors; %d answers 429 (all with Retry-After: %t); %d answers 503\n", res.errors, res.limited, res.retryAfter, res.unavailable)
	res.steady = int(o.duration / o.interval)
	if n := len(res.rss); n >= 3 {
		fmt.Fprintf(stdout, "  live heap after a collection: %.0f MB after the first interval, %.0f MB at the end of the steady phase, most %.0f MB\n",
			res.rss[0], res.rss[min(n, res.steady)-1], slices.Max(res.rss))
	}
	return res, nil
}

func (s *soakRun) count(f func(*soakWindow)) {
	s.mu.Lock()
	f(&s.win)
	s.mu.Unlock()
}

// received hears of each email: the welcome email's arrival minus its
// contact's trigger confirmation is the event-to-message latency.
func (s *soakRun) received(to, step string, at time.Time) {
	var lat time.Duration
	if step == "welcome" {
		if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(to, "p"), "@example.com")); err == nil && i < len(s.acked) {
			if t := s.acked[i].Load(); t > 0 {
				lat = max(0, at.Sub(time.Unix(0, t)))
			}
		}
	}
	s.count(func(w *soakWindow) {
		w.messages++
		if lat > 0 {
			w.toEmail = append(w.toEmail, lat)
		}
	})
}

// produce sends the trigger events: o.rate a second for o.duration, then
// o.burstX times that for o.burstFor, from 32 concurrent clients, each
// retrying a refused request when Retry-After says.
func (s *soakRun) produce(ctx context.Context) error {
	type job struct{ lo, hi int }
	jobs := make(chan job, 1<<16)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	for range 32 {
		wg.Go(func() {
			for j := range jobs {
				s.send(ctx, client, j.lo, j.hi)
			}
		})
	}
	next, i := time.Now(), 0
	for _, phase := range []struct {
		rate int
		d    time.Duration
	}{{s.o.rate, s.o.duration}, {s.o.rate * s.o.burstX, s.o.burstFor}} {
		if phase.rate == 0 {
			continue
		}
		end := time.Now().Add(phase.d)
		every := time.Duration(float64(time.Second) * float64(s.batch) / float64(phase.rate))
		for time.Now().Before(end) && i < len(s.acked) {
			hi := min(i+s.batch, len(s.acked))
			jobs <- job{i, hi}
			i = hi
			next = next.Add(every)
			select {
			case <-ctx.Done():
				close(jobs)
				return ctx.Err()
			case <-time.After(time.Until(next)):
			}
		}
	}
	close(jobs)
	wg.Wait()
	s.crashRun.o.contacts = i // the checks expect those that were sent
	return ctx.Err()
}

// send posts contacts lo..hi's trigger events until they are confirmed.
func (s *soakRun) send(ctx context.Context, client *http.Client, lo, hi int) {
	items := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		items = append(items, fmt.Sprintf(`{"type":"track","userId":"c%d","event":"crash.signup","messageId":"soak-%d"}`, i, i))
	}
	body := `{"batch":[` + strings.Join(items, ",") + `]}`
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.node.addr+"/v1/batch", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.key)
		req.Header.Set("Content-Type", "application/json")
		t := time.Now()
		resp, err := client.Do(req)
		lat := time.Since(t)
		status, wait := 0, time.Second
		if err == nil {
			var out struct {
				Stored *int `json:"stored"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			status = resp.StatusCode
			if status == http.StatusOK && derr != nil {
				status = -1
			}
			if ra := resp.Header.Get("Retry-After"); status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
				n, err := strconv.Atoi(ra)
				s.mu.Lock()
				s.retryAfter = s.retryAfter && err == nil && n > 0
				s.mu.Unlock()
				if status == http.StatusServiceUnavailable {
					n = 1 // it says 5 s; the soak wants to see the server come back sooner
				}
				wait = time.Duration(max(n, 1)) * time.Second
			}
		}
		s.count(func(w *soakWindow) {
			w.requests++
			switch status {
			case http.StatusOK:
				w.events += hi - lo
				w.ingest = append(w.ingest, lat)
			case http.StatusTooManyRequests:
				w.limited++
				s.limited++
			case http.StatusServiceUnavailable:
				w.unavailable++
				s.unavailable++
			default:
				w.errors++
				s.errors++
			}
		})
		if status == http.StatusOK {
			now := time.Now().UnixNano()
			for i := lo; i < hi; i++ {
				s.acked[i].Store(now)
			}
			s.crashRun.acked.Add(int64(hi - lo))
			return
		}
		time.Sleep(wait)
	}
}

// fault runs o.faultCmd at o.faultAt, and says how long it took.
func (s *soakRun) fault(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-ctx.Done():
		return
	case <-time.After(time.Until(s.start.Add(s.o.faultAt))):
	}
	t := time.Now()
	fmt.Fprintf(s.out, "  %8s fault: %s\n", t.Sub(s.start).Round(time.Second), s.o.faultCmd)
	out, err := exec.CommandContext(ctx, "sh", "-c", s.o.faultCmd).CombinedOutput()
	fmt.Fprintf(s.out, "  %8s fault command done after %s (error: %v) %s\n", time.Since(s.start).Round(time.Second),
		time.Since(t).Round(100*time.Millisecond), err, strings.TrimSpace(string(out)))
}

// report prints a line every interval until done, and returns the live
// heap figures it printed (MB) and the number of intervals whose live heap
// it could not read.
func (s *soakRun) report(ctx context.Context, done <-chan struct{}) (rss []float64, unread int) {
	store, err := openExisting(ctx, s.crashRun.o.db)
	if err != nil {
		fmt.Fprintf(s.out, "  (no backlog figures: %v)\n", err)
	} else {
		defer store.Close()
	}
	fmt.Fprintf(s.out, "  %8s %9s %9s %6s %6s %6s %10s %12s %8s %8s %9s %8s\n", "time", "events/s", "msgs/s", "429s", "503s", "errors",
		"ingest p99", "to-email p99", "backlog", "RSS MB", "anon MB", "live MB")
	t := time.NewTicker(s.o.interval)
	defer t.Stop()
	last := s.start
	for {
		final := false
		select {
		case <-done:
			final = true // the last, partial interval
		case <-t.C:
		}
		s.mu.Lock()
		w := s.win
		s.win = soakWindow{}
		s.mu.Unlock()
		secs := time.Since(last).Seconds()
		last = time.Now()
		pid := s.serverPID()
		mb, anon := float64(procStatusKB(pid, "VmRSS"))/1024, float64(procStatusKB(pid, "RssAnon"))/1024
		live, err := liveHeapMB(ctx, s.debugAddr)
		if err != nil {
			fmt.Fprintf(s.out, "  (live heap not read: %v; anonymous RSS counts instead)\n", err)
			live = anon
			unread++
		}
		rss = append(rss, live)
		backlog := "?"
		if store != nil {
			if ms, err := store.MessageList(ctx, &nudge.MessageListParams{Status: nudge.MessageQueued, Limit: 10000}); err == nil {
				backlog = strconv.Itoa(len(ms))
			}
		}
		fmt.Fprintf(s.out, "  %8s %9.0f %9.0f %6d %6d %6d %10s %12s %8s %8.0f %9.0f %8.1f\n", time.Since(s.start).Round(time.Second),
			float64(w.events)/secs, float64(w.messages)/secs, w.limited, w.unavailable, w.errors, p99(w.ingest), p99(w.toEmail), backlog, mb, anon, live)
		if final {
			return rss, unread
		}
	}
}

// serverPID is the server process's id.
func (s *soakRun) serverPID() string {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	return strconv.Itoa(s.node.cmd.Process.Pid)
}

func p99(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	return d[min(len(d)*99/100, len(d)-1)].Round(time.Millisecond).String()
}

// liveHeapMB is the server's live heap right after a collection: the
// HeapAlloc its heap profile reports when asked to collect first (gc=1).
// Unlike the resident set it holds no garbage and no memory the runtime
// keeps for later, so a growing figure is a leak.
func liveHeapMB(ctx context.Context, addr string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			n, err := strconv.ParseFloat(v, 64)
			return n / (1 << 20), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no HeapAlloc in the heap profile of %s", addr)
}
