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
// Times are stored as timestamptz truncated to microseconds and returned in
// UTC. Errors carry nudge error codes; a connection failure has code
// nudge.EUNAVAILABLE, so the API can answer 503.
package postgres
