-- 0009 delivery: the sending entries of the status history, by time, for
-- MessageSMSSegments (a journey's SMS budget counts the segments of the
-- texts it sent since midnight).
CREATE INDEX message_statuses_sending ON message_statuses (at) WHERE status = 'sending';

-- webhook_pending: events waiting for delivery to a subscription, claimed
-- like the outbox (SKIP LOCKED), so a restart loses none (the delivery log
-- keeps every attempt; this table only what is still to do).
CREATE TABLE webhook_pending (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subscription_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        text NOT NULL,
	event           text NOT NULL,
	body            bytea NOT NULL,
	attempt         integer NOT NULL DEFAULT 0,
	available_at    timestamptz NOT NULL,
	claimed_until   timestamptz,
	created_at      timestamptz NOT NULL,
	UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_pending_due ON webhook_pending (available_at, id);
