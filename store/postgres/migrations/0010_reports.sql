-- 0010: reports. step_pauses holds SMS steps paused automatically on their
-- opt-out rate, with the numbers that crossed the threshold; resuming sets
-- resumed_at and keeps the row as history. At most one pause of a step
-- holds at a time.
CREATE TABLE step_pauses (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	journey_id text COLLATE "C" NOT NULL,
	step_id    text COLLATE "C" NOT NULL,
	reason     text NOT NULL,
	sent       bigint NOT NULL,
	opted_out  bigint NOT NULL,
	rate       double precision NOT NULL,
	threshold  double precision NOT NULL,
	min_sends  bigint NOT NULL,
	since      timestamptz NOT NULL,
	paused_at  timestamptz NOT NULL,
	resumed_at timestamptz,
	resumed_by text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX step_pauses_active_idx ON step_pauses (journey_id, step_id) WHERE resumed_at IS NULL;
CREATE INDEX step_pauses_step_idx ON step_pauses (journey_id, step_id, id);

-- Opt-outs by time: the opt-out check and the reports go from them (they
-- are few) back to the messages before them.
CREATE INDEX consent_ledger_optouts_idx ON consent_ledger (occurred_at) WHERE status = 'opted_out';

-- The opt-out check reads the texts queued since a time, by step, without
-- touching the table: a covering index of SMS messages only.
CREATE INDEX messages_sms_created_idx ON messages (created_at) INCLUDE (journey_id, step_id, status, contact_id) WHERE channel = 'sms';

-- contact_stage_changes: every change of a contact's lifecycle_stage or
-- journey_stage, whatever wrote it (identify, import, the API, a journey's
-- update_contact step), kept by a trigger in the same transaction as the
-- change. A new contact's stages count as changes from ''. The reports'
-- CRM movement reads it; erasing a contact deletes its history.
CREATE TABLE contact_stage_changes (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	contact_id text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	field      text NOT NULL, -- lifecycle_stage | journey_stage
	from_stage text NOT NULL,
	to_stage   text NOT NULL,
	at         timestamptz NOT NULL
);
CREATE INDEX contact_stage_changes_contact_idx ON contact_stage_changes (contact_id, field, at);

CREATE FUNCTION contact_stage_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	old_life text := '';
	old_journey text := '';
BEGIN
	IF TG_OP = 'UPDATE' THEN
		old_life := OLD.lifecycle_stage;
		old_journey := OLD.journey_stage;
	END IF;
	IF NEW.lifecycle_stage IS DISTINCT FROM old_life THEN
		INSERT INTO contact_stage_changes (contact_id, field, from_stage, to_stage, at)
		VALUES (NEW.id, 'lifecycle_stage', old_life, NEW.lifecycle_stage, NEW.updated_at);
	END IF;
	IF NEW.journey_stage IS DISTINCT FROM old_journey THEN
		INSERT INTO contact_stage_changes (contact_id, field, from_stage, to_stage, at)
		VALUES (NEW.id, 'journey_stage', old_journey, NEW.journey_stage, NEW.updated_at);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER contacts_stage_change AFTER INSERT OR UPDATE OF lifecycle_stage, journey_stage ON contacts
FOR EACH ROW EXECUTE FUNCTION contact_stage_change();
