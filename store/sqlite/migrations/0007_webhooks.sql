-- 0007: webhook subscriptions (CRM write-back) and their delivery log, one
-- row per attempt. The secret signs the calls, so it is kept as it is.

CREATE TABLE webhooks (
	id         TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	events     TEXT NOT NULL, -- comma-separated event types
	secret     TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
	id              INTEGER PRIMARY KEY,
	subscription_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        TEXT NOT NULL,
	event           TEXT NOT NULL,
	attempt         INTEGER NOT NULL,
	status_code     INTEGER NOT NULL DEFAULT 0,
	ok              INTEGER NOT NULL,
	error           TEXT NOT NULL DEFAULT '',
	duration_ms     INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	at              INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
