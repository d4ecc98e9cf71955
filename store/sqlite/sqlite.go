package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ nudge.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations in version order.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		panic("sqlite: " + err.Error())
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with its number, as in 0001_init.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d (versions must be 1, 2, 3, ... without gaps)", m.name, i+1)
		}
	}
	return ms, nil
}

// LatestSchemaVersion is the schema version this binary migrates to.
func LatestSchemaVersion() int { return len(migrations) }

// DB is a Nudge store on one SQLite database file.
type DB struct {
	path  string
	write *sql.DB       // exactly one connection: all writes queue on it
	read  *sql.DB       // read-only connections
	ckpt  *checkpointer // checkpoints the WAL off the writer; nil in a private store

	private   bool      // from OpenPrivate
	noReports bool      // slimmed: EngineCommit keeps no report counters
	inbox     *memInbox // a private store's inbox (private_inbox.go); nil: the table

	stmtMu    sync.Mutex
	stmts     map[string]*sql.Stmt // prepared on write, by query text
	ws        *writeStmts          // prepared on write, once
	readStmts map[string]*sql.Stmt // prepared on read, by query text

	keyMu sync.Mutex
	key   []byte // workspace secret, loaded on first use

	prepMu   sync.Mutex
	prepared [2]preparedCommit // by EnginePrepare, for their EngineCommit
}

const busyTimeout = 10 * time.Second

// common are the connection settings of every connection: temp_store=MEMORY
// keeps statement journals and sorter spills off disk (a multi-row INSERT
// would otherwise open a temp file per transaction); mmap_size lets reads
// of the database file skip the read system call.
var common = "?_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
	"&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=mmap_size(268435456)"

// Open opens (creating if need be) the database file at path. It does not
// migrate: call Migrate before using the store.
func Open(path string) (*DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	// A checkpointer checkpoints on a connection of its own, every 10000
	// pages (40 MB of WAL) rather than 1000, which writes each hot index
	// page back to the database less often; the writer only past
	// walRestartFrames (see checkpointer). The WAL file is truncated back to
	// 64 MB after a checkpoint.
	// The page cache stays at SQLite's default: a larger one makes every
	// commit slower (the pager scans its whole hash table at the end of a
	// write transaction), and mmap serves reads of the database file.
	write, err := sql.Open("sqlite", path+common+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+
		"&_pragma=wal_autocheckpoint("+strconv.FormatUint(uint64(walRestartFrames), 10)+")&_pragma=journal_size_limit(67108864)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The writer connection is opened first: it creates the file and turns
	// WAL on (a persistent property of the file) before any reader connects.
	if err := oneConnection(write, path); err != nil {
		return nil, err
	}
	read, err := sql.Open("sqlite", path+common+"&_query_only=1")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	ckpt, err := newCheckpointer(path)
	if err != nil {
		read.Close()
		write.Close()
		return nil, err
	}
	return &DB{path: path, write: write, read: read, ckpt: ckpt, stmts: map[string]*sql.Stmt{}, readStmts: map[string]*sql.Stmt{}}, nil
}

// checkPath refuses a path Open or OpenPrivate cannot take.
func checkPath(path string) error {
	if path == "" {
		return errors.New("sqlite: open: empty path")
	}
	if strings.ContainsRune(path, '?') {
		return fmt.Errorf("sqlite: open %s: the path may not contain '?'", path)
	}
	return nil
}

// oneConnection makes conn a pool of exactly one connection that is never
// closed while the pool is open, and opens it; on an error it closes conn.
func oneConnection(conn *sql.DB, path string) error {
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	if err := conn.Ping(); err != nil {
		conn.Close()
		return fmt.Errorf("sqlite: open %s: %w%s", path, err, openHint(path))
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	for _, s := range db.readStmts {
		s.Close()
	}
	db.stmts, db.readStmts, db.ws = map[string]*sql.Stmt{}, map[string]*sql.Stmt{}, nil
	db.stmtMu.Unlock()
	err := errors.Join(db.ckpt.close(), db.read.Close(), db.write.Close())
	db.ckpt.closeShm() // last: closing it drops the process's locks on it
	return err
}

// Ping reports whether the database answers, on both pools.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest migration recorded in the database, 0
// for a database never migrated.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.read)
	if err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v int
	err = q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// errSchemaTooNew is the error for a database migrated by a newer binary.
func errSchemaTooNew(have int) error {
	return fmt.Errorf("database schema version %d is newer than this nudge binary supports (%d); upgrade nudge",
		have, LatestSchemaVersion())
}

// Migrate applies the migrations the database has not seen, each in its own
// transaction, and creates the workspace secret if there is none. Running it
// again is a no-op. A database whose schema is newer than this binary knows
// is refused.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	cur, err := schemaVersion(ctx, db.write)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if cur > LatestSchemaVersion() {
		return fmt.Errorf("sqlite: migrate: %w", errSchemaTooNew(cur))
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		if err := db.migrateOne(ctx, m); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.name, err)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("sqlite: migrate: workspace secret: %w", err)
	}
	if _, err := db.write.ExecContext(ctx,
		`INSERT INTO settings (key, value) VALUES ('workspace_secret', ?) ON CONFLICT (key) DO NOTHING`, secret); err != nil {
		return fmt.Errorf("sqlite: migrate: workspace secret: %w", err)
	}
	return nil
}

func (db *DB) migrateOne(ctx context.Context, m migration) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		// Another process may have applied it since we looked: the
		// IMMEDIATE transaction holds the write lock, so look again.
		cur, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur >= m.version {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			m.version, time.Now().UnixMicro())
		return err
	})
}

// workspaceKey returns the workspace secret that keys address hashes.
func (db *DB) workspaceKey(ctx context.Context, q querier) ([]byte, error) {
	db.keyMu.Lock()
	defer db.keyMu.Unlock()
	if db.key != nil {
		return db.key, nil
	}
	var key []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'workspace_secret'`).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return nil, errors.New("workspace secret missing: the database is not migrated (run nudge migrate)")
	}
	if err != nil {
		return nil, err
	}
	db.key = key
	return key, nil
}

// inTx runs fn in a write transaction, committing if it returns nil.
//
// A private store's transaction (a savepoint) does not watch ctx: when a
// transaction's context ends, database/sql rolls it back from a goroutine
// of its own, and fn, still running, would go on staging changes to the
// in-memory inbox (private_inbox.go) that no Commit or Rollback then
// reaches. Its statements still watch ctx, so a cancelled one fails, and
// fn's error rolls the savepoint back here, in order.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	db.ckpt.gate()
	txCtx := ctx
	if db.private {
		txCtx = context.WithoutCancel(ctx)
	}
	tx, err := db.write.BeginTx(txCtx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	db.ckpt.wake()
	return err
}

// stmt returns a statement prepared on the writer, cached by its text. It
// must not be called while the caller holds a write transaction: the writer
// has one connection.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.stmts[query]; ok {
		return s, nil
	}
	s, err := db.write.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.stmts[query] = s
	return s, nil
}

// micros and fromMicros convert times to and from their stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// limit applies a list's default and cap.
func limit(n, def, most int) int {
	switch {
	case n <= 0:
		return def
	case n > most:
		return most
	}
	return n
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
