package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/channel/webhook"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/web"
)

// Main is the server: the store, the HTTP API and the background work, wired
// from a Config. Tests run it exactly as the binary does.
type Main struct {
	Config   Config
	Delivery DeliveryConfig
	Clock    nudge.Clock
	Logger   *slog.Logger
	Stdout   io.Writer // where the first-start admin key is printed
	Examples string    // the examples folder the console's simulate page offers (default "examples")

	Store  nudge.Store
	Engine *engine.Engine
	// emit tells webhook subscriptions of an event (pause.go); nil when
	// none can be told.
	emit func(ctx context.Context, typ, id string, at time.Time, data any)
	// dispatch is the webhook dispatcher once newDelivery made it; the
	// API's store emits through it (emittingStore).
	dispatch atomic.Pointer[webhook.Dispatcher]

	ln      net.Listener
	srv     *http.Server
	debug   *http.Server // Config.DebugAddr's profiles; nil when off
	served  chan error
	stopBg  context.CancelFunc
	bg      sync.WaitGroup
	started bool
}

// Run opens and migrates the store, makes the first admin key if there is
// none, and starts serving in the background. It returns once the server
// listens; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	m.Clock = cmp.Or[nudge.Clock](m.Clock, nudge.SystemClock{})
	m.Config.Lease = cmp.Or(m.Config.Lease, DefaultLease)
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}

	s, err := openStore(ctx, m.Config.DB)
	if err != nil {
		return err
	}
	m.Store = s
	if err := m.bootstrapKey(ctx); err != nil {
		return err
	}

	eng, err := engine.New(engine.Config{Store: m.emitting(s), Clock: m.Clock, Logger: m.Logger, Lease: m.Config.Lease})
	if err != nil {
		return err
	}
	m.Engine = eng

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	contacts := &ingest.ContactNormalizer{DefaultRegion: m.Config.DefaultRegion}
	a, err := api.New(api.Config{
		Store:    notifyingStore{Store: m.emitting(s), notify: eng.Notify},
		Clock:    m.Clock,
		Logger:   m.Logger,
		Parser:   &ingest.Parser{Contacts: contacts},
		Contacts: contacts,
		Registry: reg,
		Version:  version,

		IngestRate: m.Config.IngestRate,

		TwilioAuthToken:   m.Delivery.TwilioAuthToken,
		PublicURL:         m.Delivery.PublicURL,
		KannelKey:         m.Delivery.KannelKey,
		SendGridPublicKey: m.Delivery.SendGridPublicKey,
		SESTopicARNs:      m.Delivery.SESTopicARNs,
		Templates:         m.previewTemplates(),
		SMSLimits:         m.smsLimits(),
		CheckWebhookURL:   m.checkWebhookURL,
	})
	if err != nil {
		return err
	}

	console, err := web.New(m.consoleConfig(notifyingStore{Store: s, notify: eng.Notify}))
	if err != nil {
		return err
	}

	dw, err := m.newDelivery()
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.ln = ln
	m.srv = &http.Server{
		Handler:           web.Combine(a.Handler(), console.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // a CSV import streams a large body
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10, // a header flood gets 431
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(ln) }()
	if err := m.serveDebug(); err != nil {
		m.srv.Close()
		return err
	}

	bg, cancel := context.WithCancel(context.Background())
	m.stopBg = cancel
	m.bg.Add(4)
	go m.pruneLoop(bg)
	go m.pauseLoop(bg)
	go m.engineLoop(bg)
	go m.deliveryLoop(bg, dw)
	m.started = true
	m.Logger.Info("nudge listening", "addr", ln.Addr().String(), "db", redactURL(m.Config.DB), "version", version)
	return nil
}

// Addr is the address the server listens on (useful with ":0").
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Wait blocks until the server stops serving on its own (a listener error).
func (m *Main) Wait() <-chan error { return m.served }

// Close stops accepting connections, lets in-flight requests finish (up to
// the shutdown timeout), stops background work and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(m.Config.ShutdownTimeout, 30*time.Second))
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	if m.debug != nil {
		m.debug.Close()
	}
	if m.stopBg != nil {
		m.stopBg()
		m.bg.Wait()
	}
	// The webhook dispatcher stops after what emits to it, and stores the
	// events it holds before the store closes.
	if d := m.dispatch.Load(); d != nil {
		d.Close()
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

// bootstrapKey prints an admin key on the first start, when the database has none.
func (m *Main) bootstrapKey(ctx context.Context) error {
	keys, err := m.Store.APIKeyList(ctx)
	if err != nil {
		return fmt.Errorf("list api keys: %w", err)
	}
	if len(keys) > 0 {
		return nil
	}
	k, token := nudge.NewAPIKey(nudge.RoleAdmin, "first admin key", m.Clock.Now())
	if err := m.Store.APIKeyCreate(ctx, k); err != nil {
		return fmt.Errorf("create first api key: %w", err)
	}
	fmt.Fprintf(m.Stdout, `
  First start: created an admin API key. It is shown only this once:

      %s

  Use it as "Authorization: Bearer <key>" (or as the Segment write key).
  Create more with: nudge apikey create --role admin|ingest|read --name NAME

`, token)
	return nil
}

// pruneLoop deletes events older than the retention, hourly.
func (m *Main) pruneLoop(ctx context.Context) {
	defer m.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := m.Store.EventPrune(ctx, m.Clock.Now().Add(-m.Config.EventRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			m.Logger.WarnContext(ctx, "prune events", "err", err)
		case n > 0:
			m.Logger.InfoContext(ctx, "pruned events", "count", n, "retention", m.Config.EventRetention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recheck is the dispatch-time re-check of goal, exit, consent and
// suppression the delivery worker runs on each claimed batch before its
// provider calls.
func (m *Main) recheck() func(context.Context, []*nudge.Message, map[string]*nudge.Contact, map[string]*nudge.Enrollment) []string {
	return m.Engine.RecheckMany
}

// enginePoll is how often the engine looks for due waits and for work other
// nodes left, when nothing on this node told it to.
const enginePoll = 250 * time.Millisecond

// engineLoop runs the journey engine: at once when ingest or an API change
// notifies it, and every enginePoll for due waits. The engine itself never
// sleeps or reads the wall clock; this loop is its driver.
func (m *Main) engineLoop(ctx context.Context) {
	defer m.bg.Done()
	t := time.NewTicker(enginePoll)
	defer t.Stop()
	for {
		if _, err := m.Engine.RunOnce(ctx); err != nil && ctx.Err() == nil {
			m.Logger.WarnContext(ctx, "engine run", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.Engine.Wake():
		case <-t.C:
		}
	}
}

// notifyingStore tells the engine about new work as soon as ingest or an API
// change has committed it to the inbox, so event-to-decision latency does not
// wait for the next poll.
type notifyingStore struct {
	nudge.Store
	notify func()
}

func (s notifyingStore) EventIngest(ctx context.Context, items []nudge.IngestItem, now time.Time) (*nudge.IngestResult, error) {
	res, err := s.Store.EventIngest(ctx, items, now)
	if err == nil {
		s.notify()
	}
	return res, err
}

func (s notifyingStore) ContactMerge(ctx context.Context, ps []*nudge.ContactPatch, now time.Time) ([]nudge.ContactMergeResult, error) {
	res, err := s.Store.ContactMerge(ctx, ps, now)
	if err == nil {
		s.notify()
	}
	return res, err
}

func (s notifyingStore) ContactPut(ctx context.Context, c *nudge.Contact, now time.Time) (*nudge.Contact, bool, error) {
	res, created, err := s.Store.ContactPut(ctx, c, now)
	if err == nil {
		s.notify()
	}
	return res, created, err
}

func (s notifyingStore) JourneyPublish(ctx context.Context, p *nudge.JourneyPublishParams, now time.Time) (*nudge.JourneyVersion, bool, error) {
	v, created, err := s.Store.JourneyPublish(ctx, p, now)
	if err == nil {
		s.notify()
	}
	return v, created, err
}

func (s notifyingStore) JourneySetStatus(ctx context.Context, id, status string, now time.Time) error {
	err := s.Store.JourneySetStatus(ctx, id, status, now)
	if err == nil {
		s.notify()
	}
	return err
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, dcfg := DefaultConfig(), defaultDeliveryConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.storeFlags(fs)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env NUDGE_ADDR)")
	fs.DurationVar(&cfg.EventRetention, "event-retention", cfg.EventRetention, "prune events older than this (env NUDGE_EVENT_RETENTION; at least 24h)")
	fs.StringVar(&dcfg.Templates, "templates", dcfg.Templates, "folder of message templates, NAME.email.liquid and NAME.sms.liquid (env NUDGE_TEMPLATES)")
	fs.StringVar(&dcfg.PublicURL, "public-url", dcfg.PublicURL, "this server's address as providers reach it, for delivery callbacks (env NUDGE_PUBLIC_URL)")
	fs.StringVar(&dcfg.RateLimits, "rate-limits", dcfg.RateLimits, "messages per second: from:NUMBER=1, from:default (US long code 1, toll-free 3, short code 100), sms=N, email=N, workspace=N, comma-separated (env NUDGE_RATE_LIMITS)")
	fs.Float64Var(&cfg.IngestRate, "ingest-rate", cfg.IngestRate, "ingest requests a second this node takes before answering 429; 0 for no cap (env NUDGE_INGEST_RATE)")
	fs.DurationVar(&cfg.Lease, "lease", cfg.Lease, "how long a claim of work lasts; a stopped node's claimed work is taken over after it (env NUDGE_LEASE)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "serve Go's profiles (/debug/pprof/) on this address, without authentication; keep it on loopback (env NUDGE_DEBUG_ADDR; default off)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "time in-flight requests get to finish on SIGTERM (env NUDGE_SHUTDOWN_TIMEOUT)")
	demo := newDemoFlags(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := demo.prepare(ctx, fs, &cfg, &dcfg, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &Main{Config: cfg, Delivery: dcfg, Logger: cfg.NewLogger(stderr), Stdout: stdout, Examples: demo.examples}
	if err := m.Run(ctx); err != nil {
		if m.Store != nil {
			m.Store.Close()
		}
		return err
	}
	demo.announce(stdout, m.Addr())
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	case err := <-m.Wait():
		m.Close()
		return err
	}
	return m.Close()
}
