package sqlite

import (
	"database/sql"
	"fmt"
)

// OpenPrivate opens (creating if need be) the database file at path for a
// throwaway store that only this DB uses, such as the simulator's. Reads
// and writes share one connection, which holds the file's lock for as
// long as it is open: no read starts by checking for another writer's
// changes or waits for a page cache another connection invalidated, and
// nothing is synced to disk (a crash leaves the file unusable, which a
// throwaway store does not mind). Queries run one at a time. Like Open, it
// does not migrate.
func OpenPrivate(path string) (*DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	// The rollback journal is kept in memory (a transaction that fails
	// still rolls back); locking_mode EXCLUSIVE keeps the file locked and
	// the page cache valid between transactions; mmap serves reads of
	// pages the cache does not hold. The page cache stays at SQLite's
	// default size, as in Open: the pager scans its whole hash table at
	// the end of every write transaction, which is also why the store is
	// not an in-memory database (whose cache is the whole database).
	dsn := path + common +
		"&_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)&_pragma=locking_mode(EXCLUSIVE)&_txlock=immediate"
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The one connection holds the lock and the only copy of the
	// journal: it must not be closed or replaced while the store is open.
	if err := oneConnection(conn, path); err != nil {
		return nil, err
	}
	return &DB{path: path, write: conn, read: conn, stmts: map[string]*sql.Stmt{}, readStmts: map[string]*sql.Stmt{}}, nil
}
