-- 0003: the workspace policy's versions and the suppression list.

-- policy_versions are immutable, numbered 1, 2, 3… like a journey's: every
-- decision records the version it used. source is the file as published,
-- hash its sha256 in hex.
CREATE TABLE policy_versions (
	version      INTEGER PRIMARY KEY,
	source       BLOB NOT NULL,
	hash         TEXT NOT NULL,
	published_at INTEGER NOT NULL
) STRICT;

-- suppressions: addresses that must not be messaged. Keyed, like consent,
-- by the address's keyed hash, so an entry outlives an erased contact and
-- applies to whoever holds the address next; the address itself is kept
-- only masked. id only grows (AUTOINCREMENT): the list is paged by it.
CREATE TABLE suppressions (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	channel        TEXT NOT NULL,
	address_hash   TEXT NOT NULL,
	address_masked TEXT NOT NULL,
	reason         TEXT NOT NULL,
	source         TEXT NOT NULL,
	note           TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	UNIQUE (channel, address_hash, reason)
) STRICT;
CREATE INDEX suppressions_address ON suppressions (address_hash);

-- Frequency caps read a batch of contacts' recent messages by creation time.
CREATE INDEX messages_contact_created ON messages (contact_id, created_at);
