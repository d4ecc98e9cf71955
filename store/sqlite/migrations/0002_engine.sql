-- 0002: the journey engine's tables.
--
-- 0001 drafted journeys, enrollments, decisions and messages before the
-- engine's seams (nudge.JourneyStore, nudge.EngineStore) were written. No
-- release used them, so they are replaced here by tables shaped on those
-- seams, and the engine's inbox is added.

DROP TABLE message_statuses;
DROP TABLE messages;
DROP TABLE decisions;
DROP TABLE enrollments;
DROP TABLE journeys;
DROP TABLE journey_versions;

-- journeys: one row per journey; version is its latest published version.
CREATE TABLE journeys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- journey_versions are immutable: enrollments keep running the version they
-- entered. source is the file as published, hash its sha256 in hex.
CREATE TABLE journey_versions (
	journey_id   TEXT NOT NULL REFERENCES journeys (id),
	version      INTEGER NOT NULL,
	source       BLOB NOT NULL,
	hash         TEXT NOT NULL,
	published_at INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version)
) STRICT;

CREATE TRIGGER journey_versions_immutable BEFORE UPDATE ON journey_versions
BEGIN
	SELECT RAISE(ABORT, 'journey versions are immutable; publish a new version');
END;

-- inbox: work for the engine, left by ingest (one row per stored event) and
-- by contact changes (event_seq NULL), in the transaction of the change.
-- The engine claims rows in seq order for a lease (claimed_until) and
-- deletes them in the commit of the work they caused. There is no foreign
-- key on event_seq: one would need an index to let EventPrune delete, and
-- ingest pays for every index; an item whose event was pruned comes back
-- without its event.
CREATE TABLE inbox (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	contact_id    TEXT NOT NULL,
	event_seq     INTEGER,
	at            INTEGER NOT NULL,
	claimed_until INTEGER
) STRICT;

-- enrollments: one contact's pass through one journey version. A waiting
-- enrollment is a durable wait; the engine claims due ones by wake_at for a
-- lease (claimed_until). rev is the optimistic-concurrency revision, 1 on
-- insert and incremented by every update. event and steps are JSON.
CREATE TABLE enrollments (
	id            TEXT PRIMARY KEY,
	journey_id    TEXT NOT NULL,
	version       INTEGER NOT NULL,
	contact_id    TEXT NOT NULL REFERENCES contacts (id),
	key           TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL CHECK (state IN ('waiting', 'completed', 'converted', 'exited')),
	step_id       TEXT NOT NULL DEFAULT '',
	wake_at       INTEGER,
	wait_event    TEXT NOT NULL DEFAULT '',
	held_out      INTEGER NOT NULL DEFAULT 0,
	event         TEXT,
	steps         TEXT,
	entered_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	ended_at      INTEGER,
	rev           INTEGER NOT NULL,
	claimed_until INTEGER,
	FOREIGN KEY (journey_id, version) REFERENCES journey_versions (journey_id, version)
) STRICT;
-- At most one live enrollment per journey, contact and key.
CREATE UNIQUE INDEX enrollments_live ON enrollments (journey_id, contact_id, key) WHERE state = 'waiting';
-- Due waits in claim order.
CREATE INDEX enrollments_due ON enrollments (wake_at, id) WHERE state = 'waiting' AND wake_at IS NOT NULL;
CREATE INDEX enrollments_contact ON enrollments (contact_id, id);
CREATE INDEX enrollments_journey ON enrollments (journey_id, id);

-- decisions: the decision log, read by the timeline, explain and reports.
-- enrollment_id is NULL for a decision outside an enrollment (not_entered).
CREATE TABLE decisions (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	at             INTEGER NOT NULL,
	contact_id     TEXT NOT NULL,
	journey_id     TEXT NOT NULL,
	version        INTEGER NOT NULL,
	enrollment_id  TEXT,
	step_id        TEXT NOT NULL DEFAULT '',
	channel        TEXT NOT NULL DEFAULT '',
	outcome        TEXT NOT NULL,
	reason         TEXT NOT NULL,
	message        TEXT NOT NULL DEFAULT '',
	details        TEXT,
	policy_version INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX decisions_contact ON decisions (contact_id, id);
CREATE INDEX decisions_journey ON decisions (journey_id, id);
CREATE INDEX decisions_enrollment ON decisions (enrollment_id, id) WHERE enrollment_id IS NOT NULL;

-- messages: the outbox. A message is written in the transaction of the
-- decision that sends it; delivery claims queued rows by available_at and
-- sends them with idempotency_key, unique per enrollment and step.
CREATE TABLE messages (
	id              TEXT PRIMARY KEY,
	enrollment_id   TEXT NOT NULL,
	contact_id      TEXT NOT NULL,
	journey_id      TEXT NOT NULL,
	version         INTEGER NOT NULL,
	step_id         TEXT NOT NULL,
	channel         TEXT NOT NULL,
	template        TEXT NOT NULL DEFAULT '',
	purpose         TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	idempotency_key TEXT NOT NULL UNIQUE,
	available_at    INTEGER NOT NULL,
	details         TEXT,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_queued ON messages (available_at) WHERE status = 'queued';
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_enrollment ON messages (enrollment_id, id);
CREATE INDEX messages_status ON messages (status, id);

-- message_statuses: a message's delivery status history, for the delivery
-- workers and provider callbacks to append to.
CREATE TABLE message_statuses (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	status     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '{}',
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX message_statuses_message ON message_statuses (message_id, id);
