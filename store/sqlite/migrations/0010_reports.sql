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

-- The opt-out check reads the texts queued since a time, by step, without
-- touching the table: a covering index of SMS messages only.
CREATE INDEX messages_sms_created ON messages (created_at, journey_id, step_id, status, contact_id) WHERE channel = 'sms';
