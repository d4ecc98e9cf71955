-- 0012 providers: what the delivery workers last saw of each provider, one
-- row per (channel, provider), upserted once per provider per claimed batch
-- (never per message). NULL times are "never".
CREATE TABLE provider_status (
	channel         text NOT NULL,
	provider        text NOT NULL,
	last_success_at timestamptz,
	last_error_at   timestamptz,
	last_error      text NOT NULL DEFAULT '',
	hour_start      timestamptz NOT NULL,
	hour_successes  bigint NOT NULL DEFAULT 0,
	hour_errors     bigint NOT NULL DEFAULT 0,
	updated_at      timestamptz NOT NULL,
	PRIMARY KEY (channel, provider)
);

-- The messages log (console): newest first by (created_at, id), filtered
-- by one of channel, journey (and step within it) or status, or by time
-- alone, read in index order (backwards) without a sort.
CREATE INDEX messages_created_idx ON messages (created_at, id);
CREATE INDEX messages_channel_created_idx ON messages (channel, created_at, id);
CREATE INDEX messages_journey_created_idx ON messages (journey_id, created_at, id);
CREATE INDEX messages_status_created_idx ON messages (status, created_at, id);
