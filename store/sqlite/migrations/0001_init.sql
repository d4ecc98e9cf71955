-- 0001: the initial schema.
--
-- Conventions: times are INTEGER unix microseconds, UTC; maps (attributes,
-- properties, context, evidence, details, bodies) are JSON text. Tables are
-- STRICT so a wrong type is an error, not a silent conversion.
--
-- Tables from journeys on are not used by this version's Store methods yet;
-- they are here so the engine, the outbox and the reports start from a schema
-- designed for them, with their indexes.

-- settings holds workspace-wide values, such as the secret that keys
-- nudge.AddressHash. The secret is created by Migrate, from crypto/rand.
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

CREATE TABLE contacts (
	id              TEXT PRIMARY KEY,
	email           TEXT NOT NULL DEFAULT '',
	phone           TEXT NOT NULL DEFAULT '',
	timezone        TEXT NOT NULL DEFAULT '',
	lifecycle_stage TEXT NOT NULL DEFAULT '',
	journey_stage   TEXT NOT NULL DEFAULT '',
	is_customer     INTEGER NOT NULL DEFAULT 0,
	attributes      TEXT NOT NULL DEFAULT '{}',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;
-- Filter indexes end with id, the list order, so that a filtered page is
-- read in order without a sort.
CREATE INDEX contacts_email ON contacts (email, id);
CREATE INDEX contacts_phone ON contacts (phone, id);
CREATE INDEX contacts_lifecycle_stage ON contacts (lifecycle_stage, id);
CREATE INDEX contacts_journey_stage ON contacts (journey_stage, id);
CREATE INDEX contacts_updated_at ON contacts (updated_at);

-- events: identify and track calls. The unique message_id is the dedupe
-- window: an event is forgotten only when retention prunes it. The contact
-- foreign key is deferred so that EventIngest can insert a batch of events
-- first and create the contacts of the ones that were not duplicates after.
CREATE TABLE events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id   TEXT NOT NULL UNIQUE,
	type         TEXT NOT NULL,
	contact_id   TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	anonymous_id TEXT NOT NULL DEFAULT '',
	name         TEXT NOT NULL DEFAULT '',
	properties   TEXT,
	context      TEXT,
	timestamp    INTEGER NOT NULL,
	received_at  INTEGER NOT NULL
) STRICT;
-- A contact's events newest first: the index is scanned backwards, and its
-- implicit last column, the rowid, is seq, which orders events that share
-- a timestamp. (Naming seq explicitly would store it twice.)
CREATE INDEX events_contact_timestamp ON events (contact_id, timestamp);
CREATE INDEX events_received_at ON events (received_at);

-- consent_ledger is append-only: the triggers below refuse deletes and any
-- update except the one erasure makes (contact_id cleared, evidence edited).
-- Consent belongs to an address, so entries are keyed by address_hash, an
-- HMAC of the address under the workspace secret.
CREATE TABLE consent_ledger (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	contact_id   TEXT REFERENCES contacts (id) ON DELETE SET NULL,
	address_hash TEXT NOT NULL,
	channel      TEXT NOT NULL,
	purpose      TEXT NOT NULL,
	status       TEXT NOT NULL,
	source       TEXT NOT NULL,
	evidence     TEXT NOT NULL DEFAULT '{}',
	occurred_at  INTEGER NOT NULL,
	recorded_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX consent_ledger_contact ON consent_ledger (contact_id, id);
CREATE INDEX consent_ledger_address ON consent_ledger (address_hash, id);

CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
BEGIN
	SELECT RAISE(ABORT, 'consent ledger entries are never deleted');
END;

CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE ON consent_ledger
WHEN NEW.contact_id IS NOT NULL
	OR NEW.id IS NOT OLD.id
	OR NEW.address_hash IS NOT OLD.address_hash
	OR NEW.channel IS NOT OLD.channel
	OR NEW.purpose IS NOT OLD.purpose
	OR NEW.status IS NOT OLD.status
	OR NEW.source IS NOT OLD.source
	OR NEW.occurred_at IS NOT OLD.occurred_at
	OR NEW.recorded_at IS NOT OLD.recorded_at
BEGIN
	SELECT RAISE(ABORT, 'consent ledger entries are immutable; only erasure may clear contact_id and evidence');
END;

-- consent_state is the latest ledger entry per address, channel and purpose.
-- It is keyed by address, not contact: erasing a contact keeps it, so a STOP
-- outlives the contact record.
CREATE TABLE consent_state (
	address_hash TEXT NOT NULL,
	channel      TEXT NOT NULL,
	purpose      TEXT NOT NULL,
	status       TEXT NOT NULL,
	source       TEXT NOT NULL,
	updated_at   INTEGER NOT NULL,
	entry_id     INTEGER NOT NULL REFERENCES consent_ledger (id),
	PRIMARY KEY (address_hash, channel, purpose)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	role       TEXT NOT NULL,
	hash       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_created_at ON api_keys (created_at, id);

-- journeys: one row per journey; its definitions are journey_versions.
-- live_version is the published version new enrollments use (NULL: none).
CREATE TABLE journeys (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	status       TEXT NOT NULL DEFAULT 'draft', -- draft | live | paused | archived
	live_version INTEGER,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	FOREIGN KEY (id, live_version) REFERENCES journey_versions (journey_id, version) DEFERRABLE INITIALLY DEFERRED
) STRICT;
CREATE INDEX journeys_status ON journeys (status);

-- journey_versions are immutable once published: enrollments keep running
-- the version they entered.
CREATE TABLE journey_versions (
	journey_id   TEXT NOT NULL REFERENCES journeys (id),
	version      INTEGER NOT NULL,
	definition   TEXT NOT NULL, -- the source (YAML) as published
	checksum     TEXT NOT NULL, -- sha256 of definition
	published_by TEXT NOT NULL DEFAULT '',
	published_at INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version)
) STRICT;

CREATE TRIGGER journey_versions_immutable BEFORE UPDATE ON journey_versions
BEGIN
	SELECT RAISE(ABORT, 'journey versions are immutable; publish a new version');
END;

-- enrollments: one contact's pass through one journey version. A durable
-- wait is a row with wake_at set; the engine claims due rows by wake_at.
-- enrollment_key lets a journey allow several live enrollments per contact
-- (one per order, say); '' means one at a time.
CREATE TABLE enrollments (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	journey_id     TEXT NOT NULL,
	version        INTEGER NOT NULL,
	contact_id     TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	enrollment_key TEXT NOT NULL DEFAULT '',
	state          TEXT NOT NULL, -- active | waiting | completed | exited | failed
	step           TEXT NOT NULL DEFAULT '',
	wake_at        INTEGER,       -- NULL: not waiting on time
	wait_event     TEXT,          -- event name a wait-for-event step waits for
	vars           TEXT NOT NULL DEFAULT '{}',
	attempt        INTEGER NOT NULL DEFAULT 0,
	entered_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	ended_at       INTEGER,       -- NULL while live
	end_reason     TEXT NOT NULL DEFAULT '',
	FOREIGN KEY (journey_id, version) REFERENCES journey_versions (journey_id, version)
) STRICT;
CREATE UNIQUE INDEX enrollments_live ON enrollments (contact_id, journey_id, enrollment_key) WHERE ended_at IS NULL;
CREATE INDEX enrollments_wake_at ON enrollments (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX enrollments_wait_event ON enrollments (contact_id, wait_event) WHERE wait_event IS NOT NULL;
CREATE INDEX enrollments_journey ON enrollments (journey_id, version, state, step);

-- decisions: the decision log. Every evaluation of a step is recorded with
-- its outcome and reason code; the timeline, explain and reports read it.
CREATE TABLE decisions (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	enrollment_id  INTEGER REFERENCES enrollments (id) ON DELETE CASCADE,
	journey_id     TEXT,
	version        INTEGER,
	step           TEXT NOT NULL DEFAULT '',
	contact_id     TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel        TEXT NOT NULL DEFAULT '',
	outcome        TEXT NOT NULL, -- sent | deferred | skipped | exited | ...
	reason         TEXT NOT NULL, -- reason code: quiet_hours, frequency_cap, opted_out, ...
	details        TEXT NOT NULL DEFAULT '{}',
	defer_until    INTEGER,
	policy_version TEXT NOT NULL DEFAULT '',
	message_id     TEXT,
	at             INTEGER NOT NULL
) STRICT;
CREATE INDEX decisions_contact ON decisions (contact_id, at DESC, id DESC);
CREATE INDEX decisions_enrollment ON decisions (enrollment_id, id);
CREATE INDEX decisions_journey ON decisions (journey_id, version, step, outcome, at);
CREATE INDEX decisions_at ON decisions (at);

-- messages: the outbox. A message is written in the same transaction as the
-- decision that sends it; delivery workers claim queued rows by
-- available_at and send them with idempotency_key.
CREATE TABLE messages (
	id              TEXT PRIMARY KEY,
	enrollment_id   INTEGER REFERENCES enrollments (id) ON DELETE SET NULL,
	decision_id     INTEGER REFERENCES decisions (id) ON DELETE SET NULL,
	contact_id      TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel         TEXT NOT NULL,
	status          TEXT NOT NULL, -- queued | sending | sent | delivered | failed | unknown | canceled
	idempotency_key TEXT NOT NULL UNIQUE,
	available_at    INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	provider        TEXT NOT NULL DEFAULT '',
	provider_id     TEXT,
	body            TEXT NOT NULL, -- JSON: rendered subject, text, html, to, from
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	sent_at         INTEGER
) STRICT;
CREATE INDEX messages_queued ON messages (available_at) WHERE status = 'queued';
CREATE INDEX messages_contact ON messages (contact_id, created_at DESC);
CREATE INDEX messages_enrollment ON messages (enrollment_id);
CREATE INDEX messages_status ON messages (status, updated_at);
CREATE UNIQUE INDEX messages_provider_id ON messages (provider, provider_id) WHERE provider_id IS NOT NULL;

-- message_statuses: a message's delivery status history, from the worker
-- and from provider callbacks.
CREATE TABLE message_statuses (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	status     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '{}',
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX message_statuses_message ON message_statuses (message_id, id);
