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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/ingest"
)

// Main is the server: the store, the HTTP API and the background work, wired
// from a Config. Tests run it exactly as the binary does.
type Main struct {
	Config Config
	Clock  nudge.Clock
	Logger *slog.Logger
	Stdout io.Writer // where the first-start admin key is printed

	Store nudge.Store

	ln      net.Listener
	srv     *http.Server
	served  chan error
	stopBg  context.CancelFunc
	bgDone  chan struct{}
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	contacts := &ingest.ContactNormalizer{DefaultRegion: m.Config.DefaultRegion}
	a, err := api.New(api.Config{
		Store:    s,
		Clock:    m.Clock,
		Logger:   m.Logger,
		Parser:   &ingest.Parser{Contacts: contacts},
		Contacts: contacts,
		Registry: reg,
		Version:  version,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.ln = ln
	m.srv = &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // a CSV import streams a large body
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(ln) }()

	bg, cancel := context.WithCancel(context.Background())
	m.stopBg, m.bgDone = cancel, make(chan struct{})
	go m.pruneLoop(bg)
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
	if m.stopBg != nil {
		m.stopBg()
		<-m.bgDone
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
	defer close(m.bgDone)
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

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.storeFlags(fs)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env NUDGE_ADDR)")
	fs.DurationVar(&cfg.EventRetention, "event-retention", cfg.EventRetention, "prune events older than this (env NUDGE_EVENT_RETENTION; at least 24h)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "time in-flight requests get to finish on SIGTERM (env NUDGE_SHUTDOWN_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: cfg.NewLogger(stderr), Stdout: stdout}
	if err := m.Run(ctx); err != nil {
		if m.Store != nil {
			m.Store.Close()
		}
		return err
	}
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	case err := <-m.Wait():
		m.Close()
		return err
	}
	return m.Close()
}
