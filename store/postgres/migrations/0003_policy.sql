-- 0003: the workspace policy's versions and the suppression list.

-- policy_versions are immutable, numbered 1, 2, 3… like a journey's: every
-- decision records the version it used. Publishes take a transaction-scoped
-- advisory lock, so concurrent publishes number their versions in turn.
CREATE TABLE policy_versions (
	version      bigint PRIMARY KEY,
	source       bytea NOT NULL,
	hash         text NOT NULL,
	published_at timestamptz NOT NULL
);

-- suppressions: addresses that must not be messaged. Keyed, like consent,
-- by the address's keyed hash, so an entry outlives an erased contact and
-- applies to whoever holds the address next; the address itself is kept
-- only masked. The list is paged by id.
CREATE TABLE suppressions (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	channel        text NOT NULL,
	address_hash   text COLLATE "C" NOT NULL,
	address_masked text NOT NULL,
	reason         text NOT NULL,
	source         text NOT NULL,
	note           text NOT NULL DEFAULT '',
	created_at     timestamptz NOT NULL,
	UNIQUE (channel, address_hash, reason)
);
CREATE INDEX suppressions_address_idx ON suppressions (address_hash);

-- Frequency caps read a batch of contacts' recent messages by creation time.
CREATE INDEX messages_contact_created_idx ON messages (contact_id, created_at);
