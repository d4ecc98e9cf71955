-- 0015: the delivery rate limits' slots (as PostgreSQL's 0014, where
-- several nodes share them; here one process does). rate_slots has each
-- limit's next free slot, rate_holds the slot a deferred message holds.
-- Times are Unix microseconds.

CREATE TABLE rate_slots (
	key     TEXT PRIMARY KEY,
	next_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE rate_holds (
	message_id TEXT PRIMARY KEY,
	level      INTEGER NOT NULL,
	at         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
