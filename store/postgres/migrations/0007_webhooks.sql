-- 0007: webhook subscriptions (CRM write-back) and their delivery log, one
-- row per attempt. The secret signs the calls, so it is kept as it is.

CREATE TABLE webhooks (
	id         text COLLATE "C" PRIMARY KEY,
	url        text NOT NULL,
	events     text[] NOT NULL,
	secret     text NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subscription_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        text NOT NULL,
	event           text NOT NULL,
	attempt         integer NOT NULL,
	status_code     integer NOT NULL DEFAULT 0,
	ok              boolean NOT NULL,
	error           text NOT NULL DEFAULT '',
	duration_ms     bigint NOT NULL DEFAULT 0,
	next_attempt_at timestamptz,
	at              timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
