-- 0013: report counters, as SQLite's migration 0013 keeps them (the same
-- tables and meaning; see there). A journey report over a million
-- enrollments cannot count the decision log at read time. The counts are
-- kept in Go (store/internal/reportcount), once per call, in the
-- transaction of every write that changes them: EngineCommit,
-- MessageUpdate and ContactErase (per-row PL/pgSQL triggers were tried and
-- made the writes too slow). Each statement that adds to them takes its
-- rows in key order, so that two transactions lock shared rows in the same
-- order.
--
-- Counts are per journey, version and cohort day (the UTC day of the
-- enrollment's entered_at, as days since the Unix epoch). A count may reach
-- 0 and stay as a row.

CREATE TABLE report_cohorts (
	journey_id text COLLATE "C" NOT NULL,
	version    bigint NOT NULL,
	day        bigint NOT NULL,
	held_out   boolean NOT NULL,
	state      text COLLATE "C" NOT NULL,
	reason     text COLLATE "C" NOT NULL,
	n          bigint NOT NULL,
	PRIMARY KEY (journey_id, version, day, held_out, state, reason)
);

CREATE TABLE report_outcomes (
	journey_id  text COLLATE "C" NOT NULL,
	version     bigint NOT NULL,
	day         bigint NOT NULL,
	step_id     text COLLATE "C" NOT NULL,
	channel     text COLLATE "C" NOT NULL,
	outcome     text COLLATE "C" NOT NULL,
	reason      text COLLATE "C" NOT NULL,
	decisions   bigint NOT NULL,
	enrollments bigint NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, channel, outcome, reason)
);

CREATE TABLE report_paths (
	journey_id   text COLLATE "C" NOT NULL,
	version      bigint NOT NULL,
	day          bigint NOT NULL,
	step_id      text COLLATE "C" NOT NULL,
	sent         boolean NOT NULL,
	step_held    boolean NOT NULL,
	journey_held boolean NOT NULL,
	converted    boolean NOT NULL,
	n            bigint NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, sent, step_held, journey_held, converted)
);

CREATE TABLE report_messages (
	journey_id text COLLATE "C" NOT NULL,
	version    bigint NOT NULL,
	day        bigint NOT NULL,
	step_id    text COLLATE "C" NOT NULL,
	channel    text COLLATE "C" NOT NULL,
	status     text COLLATE "C" NOT NULL,
	n          bigint NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, channel, status)
);

-- One row per converted enrollment: the steps it reached (distinct, sorted,
-- separated by commas) and its messages not cancelled (step, channel and
-- created_at in Unix microseconds separated by chr(31), one after the other
-- by created_at separated by chr(30)).
CREATE TABLE report_conversions (
	journey_id    text COLLATE "C" NOT NULL,
	entered_at    timestamptz NOT NULL,
	enrollment_id text COLLATE "C" NOT NULL UNIQUE,
	version       bigint NOT NULL,
	held_out      boolean NOT NULL,
	converted_at  timestamptz NOT NULL,
	steps         text NOT NULL,
	touches       text NOT NULL,
	PRIMARY KEY (journey_id, entered_at, enrollment_id)
);

-- nudge_report_day is an enrollment's cohort day.
CREATE FUNCTION nudge_report_day(t timestamptz) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN floor(extract(epoch FROM t) / 86400)::bigint;

-- nudge_report_steps and nudge_report_touches are the steps (in no order)
-- and the touches of an enrollment's report_conversions row. (A query of
-- decisions by enrollment says enrollment_id <> '', the predicate of
-- decisions_enrollment_idx: a generic plan cannot use the index without.)
CREATE FUNCTION nudge_report_steps(enrollment text) RETURNS text
	LANGUAGE sql STABLE
	RETURN coalesce((SELECT string_agg(DISTINCT d.step_id, ',')
		FROM decisions d WHERE d.enrollment_id = enrollment AND d.enrollment_id <> '' AND d.step_id <> ''), '');

CREATE FUNCTION nudge_report_touches(enrollment text) RETURNS text
	LANGUAGE sql STABLE
	RETURN coalesce((SELECT string_agg(m.step_id || chr(31) || m.channel || chr(31)
			|| (extract(epoch FROM m.created_at) * 1000000)::bigint, chr(30) ORDER BY m.created_at, m.id)
		FROM messages m WHERE m.enrollment_id = enrollment AND m.status <> 'cancelled'), '');

-- Backfill from the rows as they are.
INSERT INTO report_cohorts (journey_id, version, day, held_out, state, reason, n)
SELECT journey_id, version, day, held_out, state, reason, count(*) FROM (
	SELECT e.journey_id, e.version, nudge_report_day(e.entered_at) AS day, e.held_out, e.state,
		coalesce((SELECT d.reason FROM decisions d WHERE d.enrollment_id = e.id AND d.enrollment_id <> ''
			AND d.outcome IN ('converted', 'exited', 'completed') ORDER BY d.id DESC LIMIT 1), '') AS reason
	FROM enrollments e) x
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO report_outcomes (journey_id, version, day, step_id, channel, outcome, reason, decisions, enrollments)
SELECT e.journey_id, e.version, nudge_report_day(e.entered_at), d.step_id, d.channel, d.outcome, d.reason,
	count(*), count(DISTINCT d.enrollment_id)
FROM decisions d JOIN enrollments e ON e.id = d.enrollment_id
GROUP BY 1, 2, 3, 4, 5, 6, 7;

INSERT INTO report_paths (journey_id, version, day, step_id, sent, step_held, journey_held, converted, n)
SELECT journey_id, version, day, step_id, sent, held, jheld, conv, count(*) FROM (
	SELECT e.journey_id, e.version, nudge_report_day(e.entered_at) AS day, d.step_id,
		bool_or(d.outcome = 'sent') AS sent, bool_or(d.outcome = 'held_out') AS held,
		e.held_out AS jheld, e.state = 'converted' AS conv
	FROM decisions d JOIN enrollments e ON e.id = d.enrollment_id
	WHERE d.step_id <> '' GROUP BY e.id, d.step_id) x
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
SELECT e.journey_id, e.version, nudge_report_day(e.entered_at), m.step_id, m.channel, m.status, count(*)
FROM messages m JOIN enrollments e ON e.id = m.enrollment_id
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO report_conversions (enrollment_id, journey_id, version, entered_at, held_out, converted_at, steps, touches)
SELECT e.id, e.journey_id, e.version, e.entered_at, e.held_out, coalesce(e.ended_at, e.updated_at),
	nudge_report_steps(e.id), nudge_report_touches(e.id)
FROM enrollments e WHERE e.state = 'converted';
