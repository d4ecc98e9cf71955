-- 0010: reports. step_pauses holds SMS steps paused automatically on their
-- opt-out rate, with the numbers that crossed the threshold; resuming sets
-- resumed_at and keeps the row as history. At most one pause of a step
-- holds at a time.
CREATE TABLE step_pauses (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	journey_id TEXT NOT NULL,
	step_id    TEXT NOT NULL,
	reason     TEXT NOT NULL,
	sent       INTEGER NOT NULL,
	opted_out  INTEGER NOT NULL,
	rate       REAL NOT NULL,
	threshold  REAL NOT NULL,
	min_sends  INTEGER NOT NULL,
	since      INTEGER NOT NULL,
	paused_at  INTEGER NOT NULL,
	resumed_at INTEGER,
	resumed_by TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX step_pauses_active ON step_pauses (journey_id, step_id) WHERE resumed_at IS NULL;
CREATE INDEX step_pauses_step ON step_pauses (journey_id, step_id, id);

-- Opt-outs by time: the opt-out check and the reports go from them (they
-- are few) back to the messages before them.
CREATE INDEX consent_ledger_optouts ON consent_ledger (occurred_at) WHERE status = 'opted_out';

-- The opt-out check reads the texts queued since a time, by step, without
-- touching the table: a covering index of SMS messages only.
CREATE INDEX messages_sms_created ON messages (created_at, journey_id, step_id, status, contact_id) WHERE channel = 'sms';

-- contact_stage_changes: every change of a contact's lifecycle_stage or
-- journey_stage, whatever wrote it (identify, import, the API, a journey's
-- update_contact step), kept by triggers in the same transaction as the
-- change. A new contact's stages count as changes from ''. The reports'
-- CRM movement reads it; erasing a contact deletes its history.
CREATE TABLE contact_stage_changes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	contact_id TEXT NOT NULL,
	field      TEXT NOT NULL, -- lifecycle_stage | journey_stage
	from_stage TEXT NOT NULL,
	to_stage   TEXT NOT NULL,
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX contact_stage_changes_contact ON contact_stage_changes (contact_id, field, at);

CREATE TRIGGER contacts_stage_insert AFTER INSERT ON contacts
BEGIN
	INSERT INTO contact_stage_changes (contact_id, field, from_stage, to_stage, at)
	SELECT NEW.id, 'lifecycle_stage', '', NEW.lifecycle_stage, NEW.updated_at WHERE NEW.lifecycle_stage <> ''
	UNION ALL
	SELECT NEW.id, 'journey_stage', '', NEW.journey_stage, NEW.updated_at WHERE NEW.journey_stage <> '';
END;

CREATE TRIGGER contacts_stage_update AFTER UPDATE OF lifecycle_stage, journey_stage ON contacts
WHEN NEW.lifecycle_stage IS NOT OLD.lifecycle_stage OR NEW.journey_stage IS NOT OLD.journey_stage
BEGIN
	INSERT INTO contact_stage_changes (contact_id, field, from_stage, to_stage, at)
	SELECT NEW.id, 'lifecycle_stage', OLD.lifecycle_stage, NEW.lifecycle_stage, NEW.updated_at WHERE NEW.lifecycle_stage IS NOT OLD.lifecycle_stage
	UNION ALL
	SELECT NEW.id, 'journey_stage', OLD.journey_stage, NEW.journey_stage, NEW.updated_at WHERE NEW.journey_stage IS NOT OLD.journey_stage;
END;

CREATE TRIGGER contacts_stage_delete AFTER DELETE ON contacts
BEGIN
	DELETE FROM contact_stage_changes WHERE contact_id = OLD.id;
END;
