-- 0012 providers: what the delivery workers last saw of each provider, one
-- row per (channel, provider), upserted once per provider per claimed batch
-- (never per message). Times are unix microseconds; 0 is "never".
CREATE TABLE provider_status (
	channel         TEXT NOT NULL,
	provider        TEXT NOT NULL,
	last_success_at INTEGER NOT NULL DEFAULT 0,
	last_error_at   INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	hour_start      INTEGER NOT NULL,
	hour_successes  INTEGER NOT NULL DEFAULT 0,
	hour_errors     INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (channel, provider)
) STRICT, WITHOUT ROWID;

-- The messages log (console): newest first by (created_at, id), filtered
-- by one of channel, journey (and step within it) or status, or by time
-- alone, read in index order without a sort.
CREATE INDEX messages_created ON messages (created_at, id);
CREATE INDEX messages_channel_created ON messages (channel, created_at, id);
CREATE INDEX messages_journey_created ON messages (journey_id, created_at, id);
CREATE INDEX messages_status_created ON messages (status, created_at, id);
