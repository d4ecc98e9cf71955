-- 0002: the engine. Replaces the draft journey, enrollment, decision and
-- message tables of 0001 (never used by a Store method, so empty) with the
-- shapes of nudge.JourneyStore and nudge.EngineStore, and adds the inbox.

DROP TABLE IF EXISTS message_statuses, messages, decisions, enrollments, journey_versions, journeys CASCADE;

-- journeys: one row per journey; version is the latest published one. Rows
-- are locked (FOR UPDATE) while a version is published, so versions of one
-- journey are numbered 1, 2, 3… without gaps under concurrent publishes.
CREATE TABLE journeys (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL DEFAULT '',
	status     text NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
	version    bigint NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);

-- journey_versions are immutable: enrollments keep running the version they
-- entered.
CREATE TABLE journey_versions (
	journey_id   text COLLATE "C" NOT NULL REFERENCES journeys (id),
	version      bigint NOT NULL,
	source       bytea NOT NULL, -- the YAML file as published
	hash         text NOT NULL,  -- sha256 of source, hex
	published_at timestamptz NOT NULL,
	PRIMARY KEY (journey_id, version)
);
CREATE TRIGGER journey_versions_immutable BEFORE UPDATE OR DELETE ON journey_versions
	FOR EACH ROW EXECUTE FUNCTION nudge_immutable();

-- inbox: work for the engine, left in the same transaction as the change
-- that makes it: a stored event (event_seq set) or a changed contact
-- (event_seq NULL). Engine nodes claim items in seq order with
-- FOR UPDATE SKIP LOCKED and a lease (claimed_until), and delete them in the
-- transaction that commits what they caused. No foreign keys: ingest's fast
-- path inserts events and inbox items in one statement, and a contact's
-- erasure deletes its items itself. No index but the key: every one costs
-- ingest, and the inbox stays short while the engine keeps up.
CREATE TABLE inbox (
	seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	contact_id    text COLLATE "C" NOT NULL,
	event_seq     bigint,
	at            timestamptz NOT NULL,
	claimed_until timestamptz
);

-- enrollments: one contact's pass through one journey version. A waiting
-- enrollment is a durable wait: wake_at is its timer. Engine nodes claim due
-- rows in (wake_at, id) order with FOR UPDATE SKIP LOCKED and a lease
-- (claimed_until). rev is the optimistic-concurrency revision EngineCommit
-- checks: 1 on insert, incremented by every update. event and steps are the
-- JSON of nudge.Enrollment's fields. A contact's erasure deletes its
-- enrollments, decisions, messages and inbox items.
CREATE TABLE enrollments (
	id            text COLLATE "C" PRIMARY KEY,
	journey_id    text COLLATE "C" NOT NULL,
	version       bigint NOT NULL,
	contact_id    text COLLATE "C" NOT NULL REFERENCES contacts (id),
	key           text NOT NULL DEFAULT '',
	state         text NOT NULL CHECK (state IN ('waiting', 'completed', 'converted', 'exited')),
	step_id       text NOT NULL DEFAULT '',
	wake_at       timestamptz,
	wait_event    text NOT NULL DEFAULT '',
	held_out      boolean NOT NULL DEFAULT false,
	event         jsonb,
	steps         jsonb,
	entered_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	ended_at      timestamptz,
	rev           bigint NOT NULL,
	claimed_until timestamptz,
	FOREIGN KEY (journey_id, version) REFERENCES journey_versions (journey_id, version)
);
-- At most one live enrollment per journey, contact and key.
CREATE UNIQUE INDEX enrollments_live_idx ON enrollments (journey_id, contact_id, key) WHERE state = 'waiting';
CREATE INDEX enrollments_due_idx ON enrollments (wake_at, id) WHERE state = 'waiting' AND wake_at IS NOT NULL;
CREATE INDEX enrollments_contact_idx ON enrollments (contact_id, id);
CREATE INDEX enrollments_journey_idx ON enrollments (journey_id, id);

-- decisions: the decision log, append-only. The timeline, explain and
-- reports read it.
CREATE TABLE decisions (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at             timestamptz NOT NULL,
	contact_id     text COLLATE "C" NOT NULL,
	journey_id     text COLLATE "C" NOT NULL DEFAULT '',
	version        bigint NOT NULL DEFAULT 0,
	enrollment_id  text COLLATE "C" NOT NULL DEFAULT '',
	step_id        text NOT NULL DEFAULT '',
	channel        text NOT NULL DEFAULT '',
	outcome        text NOT NULL,
	reason         text NOT NULL,
	message        text NOT NULL DEFAULT '',
	details        jsonb,
	policy_version bigint NOT NULL DEFAULT 0
);
CREATE INDEX decisions_contact_idx ON decisions (contact_id, id);
CREATE INDEX decisions_journey_idx ON decisions (journey_id, id);
CREATE INDEX decisions_enrollment_idx ON decisions (enrollment_id, id) WHERE enrollment_id <> '';
CREATE INDEX decisions_at_idx ON decisions USING brin (at);

-- messages: the outbox. A message is written in the same transaction as the
-- decision that sends it; delivery workers claim queued rows by
-- available_at (FOR UPDATE SKIP LOCKED) and send them with idempotency_key.
CREATE TABLE messages (
	id              text COLLATE "C" PRIMARY KEY,
	enrollment_id   text COLLATE "C" NOT NULL DEFAULT '',
	contact_id      text COLLATE "C" NOT NULL,
	journey_id      text COLLATE "C" NOT NULL DEFAULT '',
	version         bigint NOT NULL DEFAULT 0,
	step_id         text NOT NULL DEFAULT '',
	channel         text NOT NULL,
	template        text NOT NULL DEFAULT '',
	purpose         text NOT NULL DEFAULT '',
	status          text NOT NULL,
	idempotency_key text COLLATE "C" NOT NULL UNIQUE,
	available_at    timestamptz NOT NULL,
	details         jsonb,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX messages_queued_idx ON messages (available_at, id) WHERE status = 'queued';
CREATE INDEX messages_contact_idx ON messages (contact_id, id);
CREATE INDEX messages_enrollment_idx ON messages (enrollment_id, id);
CREATE INDEX messages_status_idx ON messages (status, id);

-- message_statuses: a message's delivery status history (as drafted in 0001).
CREATE TABLE message_statuses (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	status     text NOT NULL,
	detail     jsonb NOT NULL DEFAULT '{}',
	at         timestamptz NOT NULL
);
CREATE INDEX message_statuses_message_idx ON message_statuses (message_id, id);

-- nudge_conflict raises SQLSTATE NC409, which the store reports as
-- ECONFLICT. EngineCommit sends its statements as one pipelined batch (an
-- implicit transaction) and calls it when an enrollment's rev has moved, so
-- the whole batch rolls back without a round trip to decide.
CREATE FUNCTION nudge_conflict(msg text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '%', msg USING ERRCODE = 'NC409';
END;
$$;
