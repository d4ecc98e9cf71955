package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nudge/nudge"
)

var _ nudge.Store = (*DB)(nil)

// defaultConnectTimeout bounds a connection attempt when the URL does not set
// connect_timeout: an unreachable server must be reported, not waited for.
const defaultConnectTimeout = 5 * time.Second

// DB is a nudge.Store on PostgreSQL.
type DB struct {
	pool *pgxpool.Pool

	mu     sync.Mutex
	secret []byte // workspace secret, the key of nudge.AddressHash; loaded once
}

// Open connects to the PostgreSQL server named by url and pings it once. An
// unreachable server is an EUNAVAILABLE error, returned within the connect
// timeout (connect_timeout in the URL, 5 seconds by default).
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: say what is
		// wrong without it.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) {
			return nil, nudge.Errorf(nudge.EINVALID, "postgres: invalid database URL: %v", redactParseError(pe))
		}
		return nil, nudge.Errorf(nudge.EINVALID, "postgres: invalid database URL")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		host := cfg.ConnConfig.Host
		if cfg.ConnConfig.Port != 0 {
			host = net.JoinHostPort(host, fmt.Sprint(cfg.ConnConfig.Port))
		}
		return nil, fmt.Errorf("postgres: cannot connect to the database at %s: %w: %w", host,
			nudge.Errorf(nudge.EUNAVAILABLE, "database unavailable"), err)
	}
	return &DB{pool: pool}, nil
}

func redactParseError(pe *pgconn.ParseConfigError) string {
	if pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	// Error() is "cannot parse `<url>`: <msg>"; keep the message.
	s := pe.Error()
	if i := strings.LastIndex(s, "`: "); i >= 0 {
		return s[i+3:]
	}
	return "cannot parse"
}

// Close closes the pool. It waits for connections in use to be returned.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers.
//
// A server that answers but takes no writes (a hot standby after a
// failover, or default_transaction_read_only turned on) is not ready either: Ping reads transaction_read_only and reports such a
// server as unavailable, so /readyz says so and a load balancer stops
// sending work this node cannot store.
//
// A session the server ended (57P01, 57P02: an administrator, a failover,
// a restart) usually means the pool's other idle sessions were ended too,
// and each would fail its next query the same way: Ping then drops the
// pool's sessions and asks once more on a new one, so that one probe
// tells the server's state, not that of a session it already dropped.
func (db *DB) Ping(ctx context.Context) error {
	var ro string
	err := db.pool.QueryRow(ctx, "SELECT current_setting('transaction_read_only')").Scan(&ro)
	if sessionEnded(err) {
		db.pool.Reset()
		err = db.pool.QueryRow(ctx, "SELECT current_setting('transaction_read_only')").Scan(&ro)
	}
	if err != nil {
		return wrap("ping", err)
	}
	if ro == "on" {
		return nudge.Errorf(nudge.EUNAVAILABLE, "the database is read-only (a standby, or default_transaction_read_only is on)")
	}
	return nil
}

// CreateSchema creates the schema name if it does not exist. Tests use it to
// isolate themselves; an operator can use it to host several workspaces in
// one database (open each with search_path set to its schema).
func (db *DB) CreateSchema(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return wrap("create schema", err)
	}
	return nil
}

// DropSchema drops the schema name and everything in it.
func (db *DB) DropSchema(ctx context.Context, name string) error {
	if _, err := db.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		return wrap("drop schema", err)
	}
	return nil
}

// wrap prefixes err with the operation. *nudge.Error values pass through
// with their code; connection failures get code EUNAVAILABLE; anything else
// is internal.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ne *nudge.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, nudge.Errorf(nudge.EUNAVAILABLE, "database unavailable"), err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// sessionEnded reports whether err says the server ended the session.
func sessionEnded(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57P01" || pe.Code == "57P02")
}

// unavailable reports whether err means the database could not be reached or
// went away, as opposed to a query that failed.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		case pe.Code == "25006": // read_only_sql_transaction: a standby, or writes turned off
			return true
		case pe.Code == "53100": // disk_full
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	return false
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// inTx runs fn in a transaction, committing if it returns nil. A deadlock or
// serialization failure (which the lock ordering should prevent) is retried
// a few times before it is reported.
func (db *DB) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = db.tryTx(ctx, fn)
		switch sqlState(err) {
		case "40P01", "40001":
			continue
		}
		break
	}
	return wrap(op, err)
}

func (db *DB) tryTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// workspaceSecret returns the workspace secret, creating it on first use if
// Migrate did not (it is inserted with ON CONFLICT DO NOTHING, so concurrent
// nodes agree on one).
func (db *DB) workspaceSecret(ctx context.Context) ([]byte, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.secret != nil {
		return db.secret, nil
	}
	s, err := ensureSecret(ctx, db.pool)
	if err != nil {
		return nil, wrap("workspace secret", err)
	}
	db.secret = s
	return s, nil
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const secretKey = "workspace_secret"

func ensureSecret(ctx context.Context, q querier) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := q.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, secretKey, b); err != nil {
		return nil, err
	}
	var s []byte
	if err := q.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, secretKey).Scan(&s); err != nil {
		return nil, err
	}
	return s, nil
}

// utc truncates t to PostgreSQL's precision and returns it in UTC.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Cursors are opaque to clients: base64 of a store-specific position.
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

var errBadCursor = nudge.FieldErrorf("cursor", "not a cursor this list returned")

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 {
		return "", errBadCursor
	}
	return string(b), nil
}

// limit applies a page size's default and maximum.
func limit(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}
