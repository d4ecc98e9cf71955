package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations in version order. Versions are the
// file names' numeric prefixes and must run 1, 2, 3… without gaps.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic("postgres: migration file name without a number: " + base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("postgres: migration %s: want version %d", m.name, i+1))
		}
	}
	return ms
}

// LatestSchemaVersion is the schema version this binary migrates to.
func LatestSchemaVersion() int { return len(migrations) }

// migrateLock keys the advisory lock that serializes migrations. It is mixed
// with the schema name so that schemas in one database (tests, workspaces)
// migrate independently.
const migrateLock = "nudge.migrate"

// Migrate applies pending migrations, each in its own transaction holding a
// transaction-scoped advisory lock, so that nodes starting together apply
// each migration once. It refuses a database whose schema is newer than this
// binary knows. It then makes sure the workspace secret exists.
func (db *DB) Migrate(ctx context.Context) error {
	for {
		done, err := db.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	if _, err := db.workspaceSecret(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrateOne applies the next pending migration, if any, and reports whether
// the schema is up to date.
func (db *DB) migrateOne(ctx context.Context) (done bool, err error) {
	err = db.tryTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || '.' || current_schema(), 0))`, migrateLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > len(migrations) {
			return newerSchemaError(v)
		}
		if v == len(migrations) {
			done = true
			return nil
		}
		m := migrations[v]
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return false, wrap("migrate", err)
	}
	return done, nil
}

func newerSchemaError(v int) error {
	return nudge.Errorf(nudge.ECONFLICT, "database schema version %d is newer than this nudge binary supports (%d); upgrade nudge", v, len(migrations))
}

// SchemaVersion returns the version of the last migration applied to the
// database: 0 for an empty database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.pool)
	if err != nil {
		return 0, wrap("schema version", err)
	}
	return v, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
