// Package sqlite is the embedded store: nudge.Store on a single SQLite file,
// through modernc.org/sqlite (pure Go, no cgo).
//
// # Connections
//
// SQLite allows one writer at a time. A DB holds two pools on the same file:
// a writer with exactly one connection, used for every write transaction, and
// a pool of read-only connections for reads. Concurrent writers therefore
// queue in Go, on the writer pool, instead of failing with SQLITE_BUSY; write
// transactions begin IMMEDIATE so that another process sharing the file
// (nudge migrate while nudge serve runs) waits on busy_timeout rather than
// failing halfway through a transaction.
//
// The database runs in WAL mode, so readers never block the writer nor the
// writer readers, with foreign keys on and synchronous=NORMAL. In WAL mode
// NORMAL is durable across a crash of the process (the WAL is written on
// commit); a power loss or OS crash can lose the last transactions committed
// before it, but never corrupts the database. That is the usual trade-off
// for an embedded server; use PostgreSQL where it is not acceptable.
//
// # Schema
//
// Migrations are numbered .sql files embedded from migrations/, each run in a
// transaction and recorded in schema_migrations. Migrate refuses a database
// whose schema is newer than this binary knows. Times are stored as INTEGER
// unix microseconds in UTC, so they round-trip at microsecond precision, and
// maps as JSON text.
//
// # The engine's work
//
// Ingest and contact changes leave rows in an inbox table in their own
// transaction; the engine claims inbox rows and due enrollments for a lease
// with one UPDATE … WHERE … IN (SELECT … LIMIT n) RETURNING statement. The
// single writer connection serializes those statements, so two claims never
// take the same row, which PostgreSQL gets from SKIP LOCKED. EngineCommit
// checks each enrollment's revision and each consumed inbox item's presence,
// so work whose claim expired and was taken over is not committed twice.
//
// The first Migrate creates a random 32-byte workspace secret in the settings
// table: the key of nudge.AddressHash, under which the consent ledger is
// keyed. Copying the database file copies the secret; losing it makes the
// ledger's address hashes unmatchable.
package sqlite
