// Package postgres is Nudge's PostgreSQL store: the scale-out engine behind
// nudge.Store. Any number of `nudge serve` nodes share one database.
//
// Open parses a PostgreSQL URL or key/value string (pgx syntax; a
// search_path parameter isolates a workspace or a test in a schema, and
// pool_max_conns sizes the pool) and pings the server once, failing fast when
// it cannot be reached. Migrate applies the embedded, numbered migrations
// (migrations/NNNN_name.sql), each in its own transaction under an advisory
// lock, so nodes that start together migrate once; a database migrated by a
// newer binary is refused.
//
// Concurrency: writes that touch several contacts lock them in id order
// (creating missing ones with INSERT ... ON CONFLICT DO NOTHING in id order,
// then SELECT ... FOR NO KEY UPDATE in id order), so concurrent ingest batches
// cannot deadlock on each other; events are inserted in message_id order for
// the same reason. Consent changes to one address are serialized with
// transaction-scoped advisory locks taken in a fixed order, so the
// "a CRM import cannot undo a STOP" rule holds under concurrency.
//
// The engine's work is shared by row locks. Ingest and contact changes
// leave inbox items in the transaction of the change (ingest's track-only
// path stays one statement: events, new contacts and inbox items in one
// CTE). InboxClaim and EnrollmentClaimDue lock the oldest free rows with
// FOR UPDATE SKIP LOCKED and stamp them with a lease (claimed_until), so
// nodes claiming at once take disjoint rows without waiting on each other;
// a row claimed and committed by another node meanwhile is re-checked and
// left. EngineCommit sends its statements as one pipelined batch, an
// implicit transaction of one round trip; optimistic-concurrency failures
// (a moved enrollment revision, an inbox item already consumed) are raised
// inside the batch by nudge_conflict (SQLSTATE NC409), which rolls it back
// and becomes ECONFLICT.
//
// Times are stored as timestamptz truncated to microseconds and returned in
// UTC. Errors carry nudge error codes; a connection failure has code
// nudge.EUNAVAILABLE, so the API can answer 503.
package postgres
