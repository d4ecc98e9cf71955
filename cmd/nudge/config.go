package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/postgres"
	"github.com/nudge/nudge/store/sqlite"
)

// Config is what an operator can set, by flag or by environment variable. The
// README's configuration table lists the same names.
type Config struct {
	DB              string        // NUDGE_DB: SQLite file path, or postgres:// URL
	Addr            string        // NUDGE_ADDR: listen address
	DefaultRegion   string        // NUDGE_DEFAULT_REGION: region for phone numbers without +country code
	LogFormat       string        // NUDGE_LOG_FORMAT: text or json
	LogLevel        string        // NUDGE_LOG_LEVEL: debug, info, warn, error
	EventRetention  time.Duration // NUDGE_EVENT_RETENTION: events older than this are pruned
	ShutdownTimeout time.Duration // NUDGE_SHUTDOWN_TIMEOUT: how long in-flight requests get on SIGTERM
	// Lease is how long a node's claim of inbox items, due enrollments and
	// queued messages lasts: what a node that died had claimed is taken
	// over by another (or by itself, restarted) once it expires.
	Lease time.Duration // NUDGE_LEASE
	// IngestRate caps this node's ingest requests a second (429 with
	// Retry-After beyond it); 0 for no cap.
	IngestRate float64 // NUDGE_INGEST_RATE
	// DebugAddr, when set, serves Go's profiles (/debug/pprof/: heap,
	// goroutines, CPU) on a listener of its own, apart from the API and
	// without its authentication: keep it on loopback. Empty: off.
	DebugAddr string // NUDGE_DEBUG_ADDR
}

// DefaultLease is the default of Config.Lease.
const DefaultLease = 30 * time.Second

// minRetention keeps messageId deduplication honest: duplicates are detected
// against stored events, so events must live at least a day.
const minRetention = 24 * time.Hour

// DefaultConfig returns the defaults, overridden by the environment.
func DefaultConfig() Config {
	c := Config{
		DB:              cmp.Or(os.Getenv("NUDGE_DB"), "nudge.db"),
		Addr:            cmp.Or(os.Getenv("NUDGE_ADDR"), ":8080"),
		DefaultRegion:   cmp.Or(os.Getenv("NUDGE_DEFAULT_REGION"), "US"),
		LogFormat:       cmp.Or(os.Getenv("NUDGE_LOG_FORMAT"), "text"),
		LogLevel:        cmp.Or(os.Getenv("NUDGE_LOG_LEVEL"), "info"),
		EventRetention:  90 * 24 * time.Hour,
		ShutdownTimeout: 30 * time.Second,
		Lease:           DefaultLease,
		DebugAddr:       os.Getenv("NUDGE_DEBUG_ADDR"),
	}
	if v, err := time.ParseDuration(os.Getenv("NUDGE_EVENT_RETENTION")); err == nil {
		c.EventRetention = v
	}
	if v, err := time.ParseDuration(os.Getenv("NUDGE_SHUTDOWN_TIMEOUT")); err == nil {
		c.ShutdownTimeout = v
	}
	if v, err := time.ParseDuration(os.Getenv("NUDGE_LEASE")); err == nil {
		c.Lease = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("NUDGE_INGEST_RATE"), 64); err == nil {
		c.IngestRate = v
	}
	return c
}

// storeFlags registers the flags every command that opens the database takes.
func (c *Config) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DB, "db", c.DB, "SQLite file path or postgres:// URL (env NUDGE_DB)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json (env NUDGE_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error (env NUDGE_LOG_LEVEL)")
	fs.StringVar(&c.DefaultRegion, "default-region", c.DefaultRegion, "region for phone numbers written without +country code, e.g. US, GB (env NUDGE_DEFAULT_REGION)")
}

// Validate checks the configuration and says which setting is wrong.
func (c *Config) Validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.EventRetention < minRetention {
		return fmt.Errorf("event retention %s: must be at least %s, the messageId deduplication window", c.EventRetention, minRetention)
	}
	if c.Lease != 0 && c.Lease < time.Second {
		return fmt.Errorf("lease %s: must be at least 1s (0 for the default, %s)", c.Lease, DefaultLease)
	}
	if c.DB == "" {
		return fmt.Errorf("db: empty; give a SQLite file path or a postgres:// URL")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the slog logger the configuration asks for.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// isPostgres reports whether a --db value names a PostgreSQL server.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// versioned is what both stores offer beyond nudge.Store for `nudge migrate`.
type versioned interface {
	SchemaVersion(ctx context.Context) (int, error)
}

// openStore opens the database a --db value names and migrates it.
func openStore(ctx context.Context, db string) (nudge.Store, error) {
	var (
		s   nudge.Store
		err error
	)
	if isPostgres(db) {
		s, err = postgres.Open(ctx, db)
	} else {
		s, err = sqlite.Open(strings.TrimPrefix(db, "sqlite:"))
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactURL(db), err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database %s: %w", redactURL(db), err)
	}
	return s, nil
}

// redactURL hides a password in a database URL before it is printed.
func redactURL(db string) string {
	if !isPostgres(db) {
		return db
	}
	scheme, rest, _ := strings.Cut(db, "://")
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return db
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return db
}
