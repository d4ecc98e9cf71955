-- 0001: the first schema. Sized for 10 million contacts and 100 million
-- events. Identifiers that are compared and ordered use COLLATE "C" so that
-- ordering is bytewise, as in Go and SQLite, and comparisons are cheap.

-- Workspace settings: the secret that keys nudge.AddressHash is inserted by
-- Migrate from crypto/rand (PostgreSQL has no CSPRNG without pgcrypto).
CREATE TABLE settings (
	key        text PRIMARY KEY,
	value      bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Rows that must never change once written (journey versions, ledger
-- entries) are guarded by triggers, so a bug elsewhere cannot rewrite history.
CREATE FUNCTION nudge_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'nudge: rows of % are immutable', TG_TABLE_NAME
		USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TABLE contacts (
	id              text COLLATE "C" PRIMARY KEY,
	email           text NOT NULL DEFAULT '',
	phone           text NOT NULL DEFAULT '',
	timezone        text NOT NULL DEFAULT '',
	lifecycle_stage text NOT NULL DEFAULT '',
	journey_stage   text NOT NULL DEFAULT '',
	is_customer     boolean NOT NULL DEFAULT false,
	attributes      jsonb NOT NULL DEFAULT '{}',
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX contacts_email_lower_idx ON contacts (lower(email));
CREATE INDEX contacts_email_idx ON contacts (email);
CREATE INDEX contacts_phone_idx ON contacts (phone);
CREATE INDEX contacts_lifecycle_stage_idx ON contacts (lifecycle_stage);
CREATE INDEX contacts_journey_stage_idx ON contacts (journey_stage);
CREATE INDEX contacts_updated_at_idx ON contacts (updated_at);
CREATE INDEX contacts_attributes_idx ON contacts USING gin (attributes jsonb_path_ops);

-- The unique index on message_id is the dedupe window: events are only
-- removed by retention (EventPrune), which keeps at least 24 hours. The
-- contact foreign key is deferred so that EventIngest can insert a batch
-- first and create the contacts of the events that were not duplicates after.
CREATE TABLE events (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id   text COLLATE "C" NOT NULL,
	type         text NOT NULL,
	contact_id   text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	anonymous_id text NOT NULL DEFAULT '',
	name         text NOT NULL DEFAULT '',
	properties   jsonb,
	context      jsonb,
	timestamp    timestamptz NOT NULL,
	received_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX events_message_id_idx ON events (message_id);
CREATE INDEX events_contact_idx ON events (contact_id, timestamp DESC, seq DESC);
-- received_at only grows (append-only table): a BRIN index is tiny and is
-- what retention's range delete needs.
CREATE INDEX events_received_at_idx ON events USING brin (received_at);
-- EventIngest draws seqs from events_seq_seq, the identity's sequence, by name.

-- The consent ledger is append-only. The only change allowed is erasure:
-- contact_id set NULL and the evidence IP removed (see the trigger below).
CREATE TABLE consent_ledger (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	contact_id   text COLLATE "C" REFERENCES contacts (id) ON DELETE SET NULL,
	address_hash text NOT NULL,
	channel      text NOT NULL,
	purpose      text NOT NULL,
	status       text NOT NULL,
	source       text NOT NULL,
	evidence     jsonb NOT NULL DEFAULT '{}',
	occurred_at  timestamptz NOT NULL,
	recorded_at  timestamptz NOT NULL
);
CREATE INDEX consent_ledger_contact_idx ON consent_ledger (contact_id, id);
CREATE INDEX consent_ledger_address_hash_idx ON consent_ledger (address_hash, id);

CREATE FUNCTION nudge_consent_ledger_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'nudge: consent ledger entries cannot be deleted'
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	IF NEW.id <> OLD.id OR NEW.address_hash <> OLD.address_hash
		OR NEW.channel <> OLD.channel OR NEW.purpose <> OLD.purpose
		OR NEW.status <> OLD.status OR NEW.source <> OLD.source
		OR NEW.occurred_at <> OLD.occurred_at OR NEW.recorded_at <> OLD.recorded_at
		OR NEW.contact_id IS NOT NULL AND NEW.contact_id IS DISTINCT FROM OLD.contact_id
		OR NEW.evidence <> OLD.evidence - 'ip' AND NEW.evidence <> OLD.evidence
	THEN
		RAISE EXCEPTION 'nudge: consent ledger entries are immutable except for erasure'
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER consent_ledger_guard BEFORE UPDATE OR DELETE ON consent_ledger
	FOR EACH ROW EXECUTE FUNCTION nudge_consent_ledger_guard();

-- The current consent of an address, per channel and purpose: the latest
-- ledger entry. Keyed by address hash, so it survives a contact's erasure.
CREATE TABLE consent_state (
	address_hash text NOT NULL,
	channel      text NOT NULL,
	purpose      text NOT NULL,
	status       text NOT NULL,
	source       text NOT NULL,
	updated_at   timestamptz NOT NULL,
	entry_id     bigint NOT NULL REFERENCES consent_ledger (id),
	PRIMARY KEY (address_hash, channel, purpose)
);

CREATE TABLE api_keys (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	role       text NOT NULL,
	hash       bytea NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
);
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at, id);

-- What comes next (engine, policy, delivery). Created now so that the first
-- releases share one schema, with the indexes the work will need; not used
-- by this version's Store methods yet. Columns mirror store/sqlite.

-- journeys: one row per journey; its definitions are journey_versions.
-- live_version is the published version new enrollments use (NULL: none).
CREATE TABLE journeys (
	id           text COLLATE "C" PRIMARY KEY,
	name         text NOT NULL,
	status       text NOT NULL DEFAULT 'draft', -- draft | live | paused | archived
	live_version integer,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL
);
CREATE INDEX journeys_status_idx ON journeys (status);

-- journey_versions are immutable once published: enrollments keep running
-- the version they entered.
CREATE TABLE journey_versions (
	journey_id   text COLLATE "C" NOT NULL REFERENCES journeys (id),
	version      integer NOT NULL,
	definition   text NOT NULL, -- the source (YAML) as published
	checksum     text NOT NULL, -- sha256 of definition
	published_by text NOT NULL DEFAULT '',
	published_at timestamptz NOT NULL,
	PRIMARY KEY (journey_id, version)
);
CREATE TRIGGER journey_versions_immutable BEFORE UPDATE OR DELETE ON journey_versions
	FOR EACH ROW EXECUTE FUNCTION nudge_immutable();
ALTER TABLE journeys ADD FOREIGN KEY (id, live_version)
	REFERENCES journey_versions (journey_id, version) DEFERRABLE INITIALLY DEFERRED;

-- enrollments: one contact's pass through one journey version. A durable
-- wait is a row with wake_at set; engine nodes claim due rows in wake_at
-- order with FOR UPDATE SKIP LOCKED. enrollment_key lets a journey allow
-- several live enrollments per contact (one per order, say); '' means one
-- at a time.
CREATE TABLE enrollments (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	journey_id     text COLLATE "C" NOT NULL,
	version        integer NOT NULL,
	contact_id     text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	enrollment_key text NOT NULL DEFAULT '',
	state          text NOT NULL, -- active | waiting | completed | exited | failed
	step           text NOT NULL DEFAULT '',
	wake_at        timestamptz,   -- NULL: not waiting on time
	wait_event     text,          -- event name a wait-for-event step waits for
	vars           jsonb NOT NULL DEFAULT '{}',
	attempt        integer NOT NULL DEFAULT 0,
	entered_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL,
	ended_at       timestamptz,   -- NULL while live
	end_reason     text NOT NULL DEFAULT '',
	FOREIGN KEY (journey_id, version) REFERENCES journey_versions (journey_id, version)
);
CREATE UNIQUE INDEX enrollments_live_idx ON enrollments (contact_id, journey_id, enrollment_key) WHERE ended_at IS NULL;
-- Due work: the claim query is
--   SELECT ... WHERE wake_at <= $now ORDER BY wake_at LIMIT n FOR UPDATE SKIP LOCKED.
CREATE INDEX enrollments_due_idx ON enrollments (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX enrollments_wait_event_idx ON enrollments (contact_id, wait_event) WHERE wait_event IS NOT NULL;
CREATE INDEX enrollments_journey_idx ON enrollments (journey_id, version, state, step);

-- decisions: the decision log. Every evaluation of a step is recorded with
-- its outcome and reason code; the timeline, explain and reports read it.
CREATE TABLE decisions (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	enrollment_id  bigint REFERENCES enrollments (id) ON DELETE CASCADE,
	journey_id     text COLLATE "C",
	version        integer,
	step           text NOT NULL DEFAULT '',
	contact_id     text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel        text NOT NULL DEFAULT '',
	outcome        text NOT NULL, -- sent | deferred | skipped | exited | ...
	reason         text NOT NULL, -- reason code: quiet_hours, frequency_cap, opted_out, ...
	details        jsonb NOT NULL DEFAULT '{}',
	defer_until    timestamptz,
	policy_version text NOT NULL DEFAULT '',
	message_id     text COLLATE "C",
	at             timestamptz NOT NULL
);
CREATE INDEX decisions_contact_idx ON decisions (contact_id, at DESC, id DESC);
CREATE INDEX decisions_enrollment_idx ON decisions (enrollment_id, id);
CREATE INDEX decisions_journey_idx ON decisions (journey_id, version, step, outcome, at);
CREATE INDEX decisions_at_idx ON decisions USING brin (at);

-- messages: the outbox. A message is written in the same transaction as the
-- decision that sends it; delivery workers claim queued rows by
-- available_at (FOR UPDATE SKIP LOCKED) and send them with idempotency_key.
CREATE TABLE messages (
	id              text COLLATE "C" PRIMARY KEY,
	enrollment_id   bigint REFERENCES enrollments (id) ON DELETE SET NULL,
	decision_id     bigint REFERENCES decisions (id) ON DELETE SET NULL,
	contact_id      text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel         text NOT NULL,
	status          text NOT NULL, -- queued | sending | sent | delivered | failed | unknown | canceled
	idempotency_key text COLLATE "C" NOT NULL UNIQUE,
	available_at    timestamptz NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	last_error      text NOT NULL DEFAULT '',
	provider        text NOT NULL DEFAULT '',
	provider_id     text,
	body            jsonb NOT NULL, -- rendered subject, text, html, to, from
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	sent_at         timestamptz
);
CREATE INDEX messages_queued_idx ON messages (available_at) WHERE status = 'queued';
CREATE INDEX messages_contact_idx ON messages (contact_id, created_at DESC);
CREATE INDEX messages_enrollment_idx ON messages (enrollment_id);
CREATE INDEX messages_status_idx ON messages (status, updated_at);
CREATE UNIQUE INDEX messages_provider_id_idx ON messages (provider, provider_id) WHERE provider_id IS NOT NULL;

-- message_statuses: a message's delivery status history, from the worker
-- and from provider callbacks.
CREATE TABLE message_statuses (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	status     text NOT NULL,
	detail     jsonb NOT NULL DEFAULT '{}',
	at         timestamptz NOT NULL
);
CREATE INDEX message_statuses_message_idx ON message_statuses (message_id, id);
