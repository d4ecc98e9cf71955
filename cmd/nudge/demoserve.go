package main

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/sim"
	"github.com/nudge/nudge/template"
)

// demoDB is the database of `nudge serve --demo`: never the real nudge.db.
const demoDB = "nudge-demo.db"

// demoEmail is the console user the demo creates.
const demoEmail = "demo@example.com"

// demoHistory is about how much simulated history the demo starts with: the
// examples' timelines are moved by whole weeks (weekdays and local times stay
// as written) so that they start this long before now, at most.
const demoHistory = 4 * 7 * 24 * time.Hour

// demoFlags are the flags of `nudge serve --demo`.
type demoFlags struct {
	on       bool
	examples string

	password string // set on the first start only
	loaded   *demoResult
}

func newDemoFlags(fs *flag.FlagSet) *demoFlags {
	d := &demoFlags{}
	fs.BoolVar(&d.on, "demo", false, "serve the examples with a few weeks of simulated history, on their own database (default "+demoDB+")")
	fs.StringVar(&d.examples, "examples", "examples", "with --demo: the examples folder")
	return d
}

// prepare readies a demo before the server starts: its own database, the
// examples' templates merged into one folder beside it, log-only delivery,
// and on the first start the examples loaded with their history.
func (d *demoFlags) prepare(ctx context.Context, fs *flag.FlagSet, cfg *Config, dcfg *DeliveryConfig, stderr io.Writer) error {
	if !d.on {
		return nil
	}
	dbSet := false
	fs.Visit(func(f *flag.Flag) { dbSet = dbSet || f.Name == "db" })
	if !dbSet {
		cfg.DB = demoDB // NUDGE_DB names the real database: not for the demo
	}
	path := strings.TrimPrefix(cfg.DB, "sqlite:")
	if isPostgres(cfg.DB) || filepath.Base(path) == "nudge.db" {
		return fmt.Errorf("--demo: refusing to use %s: the demo loads example data, so it needs its own SQLite file (default %s)", redactURL(cfg.DB), demoDB)
	}
	if _, err := os.Stat(filepath.Join(d.examples, demoExamples[0].dir, "journey.yaml")); err != nil {
		return fmt.Errorf("--demo: no examples in %s: run from the repository's root, or give --examples PATH/TO/examples", d.examples)
	}
	tdir := strings.TrimSuffix(path, filepath.Ext(path)) + "-templates"
	if err := mergeDemoTemplates(d.examples, tdir); err != nil {
		return err
	}
	// Nothing leaves the machine: every channel goes to the log sink.
	*dcfg = DeliveryConfig{Templates: tdir, EmailFrom: "demo@localhost", SMSFrom: "+15005550006", PublicURL: dcfg.PublicURL, LogOnly: true}

	s, err := openStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer s.Close()
	js, err := s.JourneyList(ctx)
	if err != nil {
		return err
	}
	if len(js) > 0 {
		return nil // loaded on an earlier start
	}
	fmt.Fprintf(stderr, "nudge demo: loading the examples in %s/ with %d weeks of history into %s …\n", d.examples, demoHistory/(7*24*time.Hour), path)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := loadDemo(ctx, demoSetup{Store: s, Examples: d.examples, Now: time.Now(), Templates: tdir,
		Logger: logger, Region: cfg.DefaultRegion})
	if err != nil {
		return fmt.Errorf("--demo: %w", err)
	}
	d.loaded, d.password = r, r.Password
	return nil
}

// announce prints where to sign in, once the server listens.
func (d *demoFlags) announce(w io.Writer, addr string) {
	if !d.on {
		return
	}
	url := "http://" + addr
	if _, port, err := net.SplitHostPort(addr); err == nil {
		url = "http://localhost:" + port
	}
	fmt.Fprintf(w, "\n  Nudge demo: open %s\n\n", url)
	if d.loaded != nil {
		fmt.Fprintf(w, "  Loaded %d journeys, %d contacts and %d events, replayed from %s to now:\n"+
			"  %d decisions, %d messages delivered to the log sink.\n\n",
			d.loaded.Journeys, d.loaded.Contacts, d.loaded.Events, d.loaded.From.Format("Mon 2 Jan"),
			d.loaded.Decisions, d.loaded.Sent)
	}
	if d.password != "" {
		fmt.Fprintf(w, "  Sign in as %s with the password below. It is shown only this once:\n\n      %s\n\n", demoEmail, d.password)
	} else {
		fmt.Fprintf(w, "  Sign in as %s (its password was printed on the first start;\n"+
			"  delete the demo database to start over, or: nudge user create --db …).\n\n", demoEmail)
	}
}

// mergeDemoTemplates copies the templates of every example into one folder,
// which the delivery worker and the API's preview read. Two examples with a
// template of one name would be a mistake in the examples.
func mergeDemoTemplates(examples, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, ex := range demoExamples {
		dir := filepath.Join(examples, ex.dir, "templates")
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".liquid") {
				continue
			}
			if other, ok := seen[e.Name()]; ok {
				return fmt.Errorf("template %s is in both %s and %s", e.Name(), other, dir)
			}
			seen[e.Name()] = dir
			src, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), src, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoSetup is what loadDemo needs.
type demoSetup struct {
	Store     nudge.Store
	Examples  string    // folder with policy.yaml and the four examples
	Now       time.Time // the end of the history
	Templates string    // the merged templates folder
	Logger    *slog.Logger
	Region    string // for phone numbers without +country code
}

// demoResult counts what loadDemo made.
type demoResult struct {
	From                         time.Time
	Journeys, Contacts, Events   int
	Decisions, Sent              int
	Password                     string
	ContactErrors, EventsSkipped int
}

// loadDemo imports the examples' contacts, publishes their journeys, and
// replays their timelines (moved to end before d.Now) through the real
// engine and delivery worker on a virtual clock, into d.Store. It then
// publishes the example policy and creates the demo console user with a
// random password.
func loadDemo(ctx context.Context, d demoSetup) (*demoResult, error) {
	n := &ingest.ContactNormalizer{DefaultRegion: d.Region}
	if d.Region == "" {
		n.DefaultRegion = "US"
	}
	var files []string
	for _, ex := range demoExamples {
		files = append(files, filepath.Join(d.Examples, ex.dir, "journey.yaml"))
	}
	var problems bytes.Buffer
	js, bad, err := parseFiles(files, "", true, &problems)
	if err != nil {
		return nil, err
	}
	if bad > 0 {
		return nil, fmt.Errorf("examples have problems:\n%s", problems.String())
	}

	// Move every time by whole weeks so the history ends by now.
	raw := make([][]byte, len(demoExamples))
	first := time.Time{}
	for i, ex := range demoExamples {
		name := filepath.Join(d.Examples, ex.dir, "timeline.jsonl")
		if raw[i], err = os.ReadFile(name); err != nil {
			return nil, err
		}
		evs, err := sim.ReadTimeline(name, bytes.NewReader(raw[i]), n)
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 && (first.IsZero() || evs[0].At().Before(first)) {
			first = evs[0].At()
		}
	}
	if first.IsZero() {
		return nil, errors.New("the examples have no events")
	}
	week := 7 * 24 * time.Hour
	weeks := int((d.Now.Sub(first) - demoHistory + week - 1) / week)
	if d.Now.Sub(first)-demoHistory < 0 {
		weeks = int((d.Now.Sub(first) - demoHistory) / week)
	}
	shift := time.Duration(weeks) * week
	from := first.Add(shift).Add(-time.Hour).UTC()

	var events []*sim.Event
	for i, ex := range demoExamples {
		name := filepath.Join(d.Examples, ex.dir, "timeline.jsonl")
		moved, err := shiftTimeline(raw[i], shift, ex.dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		evs, err := sim.ReadTimeline(name, bytes.NewReader(moved), n)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	sortEvents(events)

	s := d.Store
	clock := sim.NewClock(from)
	r := &demoResult{From: from, Journeys: len(js), Events: len(events)}

	for _, ex := range demoExamples {
		name := filepath.Join(d.Examples, ex.dir, "contacts.csv")
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		moved, err := shiftCSV(src, shift)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cr, err := ingest.NewCSVReader(bytes.NewReader(moved), nil, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sum, err := ingest.Import(ctx, s, cr, ingest.ImportOptions{Now: clock.Now, MaxErrors: 20})
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", name, err)
		}
		r.Contacts += sum.Imported + sum.Updated
		r.ContactErrors += sum.Rejected
	}

	ws := &demoStore{Store: s}
	eng, err := engine.New(engine.Config{Store: ws, Clock: clock, Logger: d.Logger, DateLookback: time.Nanosecond})
	if err != nil {
		return nil, err
	}
	// The CRM's starting state is not a change: drain what the import left
	// in the inbox before any journey exists (as the simulator does).
	if _, err := eng.RunOnce(ctx); err != nil {
		return nil, err
	}
	for _, j := range js {
		if _, _, err := s.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: j.ID, Name: j.Name, Source: j.Source, Hash: j.Hash()}, from); err != nil {
			return nil, fmt.Errorf("publish %s: %w", j.ID, err)
		}
	}

	dw, err := demoDelivery(ws, eng, clock, d)
	if err != nil {
		return nil, err
	}

	end := d.Now.UTC()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := clock.Now()
		var batch []nudge.IngestItem
		for len(events) > 0 && !events[0].At().After(now) {
			batch = append(batch, events[0].Item)
			events = events[1:]
		}
		if len(batch) > 0 {
			if _, err := s.EventIngest(ctx, batch, now); err != nil {
				return nil, fmt.Errorf("ingest at %s: %w", now.Format(time.RFC3339), err)
			}
		}
		for {
			a, err := eng.RunOnce(ctx)
			if err != nil {
				return nil, fmt.Errorf("engine at %s: %w", now.Format(time.RFC3339), err)
			}
			b, err := dw.RunOnce(ctx)
			if err != nil {
				return nil, fmt.Errorf("delivery at %s: %w", now.Format(time.RFC3339), err)
			}
			if a == 0 && b == 0 {
				break
			}
		}
		if !now.Before(end) {
			break
		}
		// Next stop: an event, a wake or send time, or an hour on (date
		// triggers and anything else the engine finds on its rounds).
		next := now.Add(time.Hour)
		if len(events) > 0 && events[0].At().Before(next) {
			next = events[0].At()
		}
		if w := ws.nextWake(now); !w.IsZero() && w.Before(next) {
			next = w
		}
		if next.After(end) {
			next = end
		}
		clock.Set(next)
	}
	r.EventsSkipped = len(events)

	// The history ran under the default policy, as the examples' stories
	// are written (and as nudge demo and the simulator's tests play them):
	// the example policy asks for email opt-in, which their contacts do not
	// give, so under it nearly every email would be skipped. It is in force
	// from now on, and each decision names the policy version it ran under.
	pol := filepath.Join(d.Examples, "policy.yaml")
	if src, err := os.ReadFile(pol); err == nil {
		if _, _, err := s.PolicyPublish(ctx, src, "", end); err != nil {
			return nil, fmt.Errorf("publish %s: %w", pol, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	for _, j := range js {
		ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{JourneyID: j.ID, Limit: 10000})
		if err != nil {
			return nil, err
		}
		r.Decisions += len(ds)
	}
	for _, st := range []string{nudge.MessageSent, nudge.MessageDelivered} {
		ms, err := s.MessageList(ctx, &nudge.MessageListParams{Status: st, Limit: 10000})
		if err != nil {
			return nil, err
		}
		r.Sent += len(ms)
	}

	r.Password = strings.ToLower(rand.Text())[:20]
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcryptCost)
	if err != nil {
		return nil, err
	}
	u := &nudge.User{ID: "usr_" + strings.ToLower(rand.Text()), Email: demoEmail, Role: nudge.UserAdmin,
		PasswordHash: hash, CreatedAt: end}
	if err := s.UserCreate(ctx, u); err != nil {
		return nil, fmt.Errorf("create the demo user: %w", err)
	}
	return r, nil
}

// demoDelivery is the replay's delivery worker: the server's, except that
// every channel, webhooks included, goes to the log sink, so that the
// history never reaches the examples' (made-up) endpoints.
func demoDelivery(s nudge.Store, eng *engine.Engine, clock nudge.Clock, d demoSetup) (*delivery.Worker, error) {
	set, err := template.Load(os.DirFS(d.Templates), template.Options{})
	if err != nil {
		return nil, fmt.Errorf("example templates: %w", err)
	}
	senders := map[string]nudge.Sender{}
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS, nudge.ChannelWebhook} {
		if senders[ch], err = logsink.New(logsink.Config{Channel: ch, Logger: d.Logger, Clock: clock}); err != nil {
			return nil, err
		}
	}
	return delivery.New(delivery.Config{
		Store:     s,
		Clock:     clock,
		Logger:    d.Logger,
		Templates: set,
		Senders:   senders,
		From:      map[string]string{nudge.ChannelEmail: "demo@localhost", nudge.ChannelSMS: "+15005550006"},
		Recheck:   eng.RecheckMany,
	})
}

// sortEvents orders the examples' events by time, file order among equal ones.
func sortEvents(evs []*sim.Event) {
	slices.SortStableFunc(evs, func(a, b *sim.Event) int { return a.At().Compare(b.At()) })
}

// shiftTimeline moves every time in a timeline (timestamps, and property
// or trait values written as RFC 3339 times or dates) by d, and gives each
// call without a messageId one unique to the example, so that the four
// timelines can share one store.
func shiftTimeline(src []byte, d time.Duration, example string) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), ingest.MaxCallBytes+1)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' || bytes.HasPrefix(b, []byte("//")) {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var call map[string]any
		if err := dec.Decode(&call); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for k, v := range call {
			call[k] = shiftValue(v, d)
		}
		if _, ok := call["messageId"]; !ok {
			call["messageId"] = fmt.Sprintf("demo-%s-%d", example, line)
		}
		j, err := json.Marshal(call)
		if err != nil {
			return nil, err
		}
		out.Write(j)
		out.WriteByte('\n')
	}
	return out.Bytes(), sc.Err()
}

// shiftCSV moves the dates and times of a CRM export's cells by d.
func shiftCSV(src []byte, d time.Duration) ([]byte, error) {
	rows, err := csv.NewReader(bytes.NewReader(src)).ReadAll()
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(rows); i++ {
		for j, cell := range rows[i] {
			if v, ok := shiftValue(cell, d).(string); ok {
				rows[i][j] = v
			}
		}
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func shiftValue(v any, d time.Duration) any {
	switch x := v.(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.Add(d).Format(time.RFC3339Nano)
		}
		if t, err := time.Parse(time.DateOnly, x); err == nil {
			return t.Add(d).Format(time.DateOnly)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = shiftValue(e, d)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = shiftValue(e, d)
		}
		return x
	}
	return v
}

// demoStore is the store the replay's engine writes through. It notes the
// wake time of every waiting enrollment and the send time of every message
// the engine commits, so the virtual clock stops exactly there.
type demoStore struct {
	nudge.Store

	mu    sync.Mutex
	wakes timeHeap
}

func (s *demoStore) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	if err := s.Store.EngineCommit(ctx, c, now); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, en := range c.Enrollments {
		if en.State == nudge.EnrollmentWaiting && !en.WakeAt.IsZero() {
			heap.Push(&s.wakes, en.WakeAt)
		}
	}
	for _, m := range c.Messages {
		if m.AvailableAt.After(now) {
			heap.Push(&s.wakes, m.AvailableAt)
		}
	}
	return nil
}

// nextWake is the earliest noted time after now.
func (s *demoStore) nextWake(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.wakes) > 0 && !s.wakes[0].After(now) {
		heap.Pop(&s.wakes)
	}
	if len(s.wakes) == 0 {
		return time.Time{}
	}
	return s.wakes[0]
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
