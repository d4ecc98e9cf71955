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

-- The opt-out check reads the texts queued since a time, by step, without
-- touching the table: a covering index of SMS messages only.
CREATE INDEX messages_sms_created_idx ON messages (created_at) INCLUDE (journey_id, step_id, status, contact_id) WHERE channel = 'sms';
