-- 0013: report counters. A journey report over a million enrollments
-- cannot count the decision log at read time, so the counts it needs are
-- kept in the transaction of every write that changes them. EngineCommit,
-- which alone inserts enrollments, decisions and messages and changes an
-- enrollment, counts what it writes once per commit and rewrites the
-- report_conversions rows of the enrollments it converts or touches after
-- (store/sqlite/reportcount.go: triggers per row made the engine's commits
-- about twice as costly); the triggers here count the rest: a message's
-- status (delivery, provider callbacks, cancellation) and erasure.
--
-- Counts are per journey, version and cohort day (the UTC day of the
-- enrollment's entered_at, as days since the Unix epoch): a report over
-- whole days sums a few rows per day; the part of a range that cuts a day
-- is counted from the rows. A count may reach 0 and stay as a row.
-- An enrollment's journey, version and entered_at never change.

-- Enrollments by held_out, state, and the reason of the last decision that
-- ended them (converted, exited, completed; '' for none).
CREATE TABLE report_cohorts (
	journey_id TEXT NOT NULL,
	version    INTEGER NOT NULL,
	day        INTEGER NOT NULL,
	held_out   INTEGER NOT NULL,
	state      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version, day, held_out, state, reason)
) STRICT, WITHOUT ROWID;

-- Decisions by step, channel, outcome and reason, and the enrollments that
-- have at least one such decision.
CREATE TABLE report_outcomes (
	journey_id  TEXT NOT NULL,
	version     INTEGER NOT NULL,
	day         INTEGER NOT NULL,
	step_id     TEXT NOT NULL,
	channel     TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	reason      TEXT NOT NULL,
	decisions   INTEGER NOT NULL,
	enrollments INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, channel, outcome, reason)
) STRICT, WITHOUT ROWID;

-- Enrollments that reached a step (a decision there), by whether it sent
-- them a message, held them out at the step, held them out of the journey,
-- and whether they converted.
CREATE TABLE report_paths (
	journey_id   TEXT NOT NULL,
	version      INTEGER NOT NULL,
	day          INTEGER NOT NULL,
	step_id      TEXT NOT NULL,
	sent         INTEGER NOT NULL,
	step_held    INTEGER NOT NULL,
	journey_held INTEGER NOT NULL,
	converted    INTEGER NOT NULL,
	n            INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, sent, step_held, journey_held, converted)
) STRICT, WITHOUT ROWID;

-- Messages by step, channel and current status.
CREATE TABLE report_messages (
	journey_id TEXT NOT NULL,
	version    INTEGER NOT NULL,
	day        INTEGER NOT NULL,
	step_id    TEXT NOT NULL,
	channel    TEXT NOT NULL,
	status     TEXT NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (journey_id, version, day, step_id, channel, status)
) STRICT, WITHOUT ROWID;

-- One row per converted enrollment: the steps it reached (distinct,
-- separated by commas, which a step id cannot hold) and its messages not
-- cancelled (step, channel and created_at separated by char(31), one after
-- the other by created_at separated by char(30)), for time to goal,
-- conversion by path and attribution.
-- A report reads a journey's rows in entry order, from the table itself.
CREATE TABLE report_conversions (
	journey_id    TEXT NOT NULL,
	entered_at    INTEGER NOT NULL,
	enrollment_id TEXT NOT NULL UNIQUE,
	version       INTEGER NOT NULL,
	held_out      INTEGER NOT NULL,
	converted_at  INTEGER NOT NULL,
	steps         TEXT NOT NULL,
	touches       TEXT NOT NULL,
	PRIMARY KEY (journey_id, entered_at, enrollment_id)
) STRICT, WITHOUT ROWID;

-- Backfill from the rows as they are.
INSERT INTO report_cohorts (journey_id, version, day, held_out, state, reason, n)
SELECT journey_id, version, day, held_out, state, reason, count(*) FROM (
	SELECT e.journey_id, e.version, e.entered_at / 86400000000 AS day, e.held_out, e.state,
		coalesce((SELECT d.reason FROM decisions d WHERE d.enrollment_id = e.id
			AND d.outcome IN ('converted', 'exited', 'completed') ORDER BY d.id DESC LIMIT 1), '') AS reason
	FROM enrollments e)
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO report_outcomes (journey_id, version, day, step_id, channel, outcome, reason, decisions, enrollments)
SELECT e.journey_id, e.version, e.entered_at / 86400000000, d.step_id, d.channel, d.outcome, d.reason,
	count(*), count(DISTINCT d.enrollment_id)
FROM decisions d JOIN enrollments e ON e.id = d.enrollment_id
GROUP BY 1, 2, 3, 4, 5, 6, 7;

INSERT INTO report_paths (journey_id, version, day, step_id, sent, step_held, journey_held, converted, n)
SELECT journey_id, version, day, step_id, sent, held, jheld, conv, count(*) FROM (
	SELECT e.journey_id, e.version, e.entered_at / 86400000000 AS day, d.step_id,
		max(d.outcome = 'sent') AS sent, max(d.outcome = 'held_out') AS held,
		e.held_out AS jheld, e.state = 'converted' AS conv
	FROM decisions d JOIN enrollments e ON e.id = d.enrollment_id
	WHERE d.step_id <> '' GROUP BY d.enrollment_id, d.step_id)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
SELECT e.journey_id, e.version, e.entered_at / 86400000000, m.step_id, m.channel, m.status, count(*)
FROM messages m JOIN enrollments e ON e.id = m.enrollment_id
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO report_conversions (enrollment_id, journey_id, version, entered_at, held_out, converted_at, steps, touches)
SELECT e.id, e.journey_id, e.version, e.entered_at, e.held_out, coalesce(e.ended_at, e.updated_at),
	coalesce((SELECT group_concat(step_id) FROM (SELECT DISTINCT d.step_id FROM decisions d
			WHERE d.enrollment_id = e.id AND d.step_id <> '' ORDER BY 1)), ''),
	coalesce((SELECT group_concat(t, char(30)) FROM (SELECT m.step_id || char(31) || m.channel || char(31) || m.created_at AS t
			FROM messages m WHERE m.enrollment_id = e.id AND m.status <> 'cancelled' ORDER BY m.created_at, m.id)), '')
FROM enrollments e WHERE e.state = 'converted';

-- An enrollment deleted (erasure) takes out what is left of its counts.
CREATE TRIGGER report_enrollment_delete AFTER DELETE ON enrollments
BEGIN
	INSERT INTO report_cohorts (journey_id, version, day, held_out, state, reason, n)
	SELECT OLD.journey_id, OLD.version, OLD.entered_at / 86400000000, OLD.held_out, OLD.state,
		coalesce((SELECT d.reason FROM decisions d WHERE d.enrollment_id = OLD.id
			AND d.outcome IN ('converted', 'exited', 'completed') ORDER BY d.id DESC LIMIT 1), ''), -1
	WHERE true ON CONFLICT DO UPDATE SET n = n + excluded.n;
	INSERT INTO report_outcomes (journey_id, version, day, step_id, channel, outcome, reason, decisions, enrollments)
	SELECT OLD.journey_id, OLD.version, OLD.entered_at / 86400000000, step_id, channel, outcome, reason, -count(*), -1
	FROM decisions WHERE enrollment_id = OLD.id GROUP BY step_id, channel, outcome, reason
	ON CONFLICT DO UPDATE SET decisions = decisions + excluded.decisions, enrollments = enrollments + excluded.enrollments;
	INSERT INTO report_paths (journey_id, version, day, step_id, sent, step_held, journey_held, converted, n)
	SELECT OLD.journey_id, OLD.version, OLD.entered_at / 86400000000, step_id, max(outcome = 'sent'),
		max(outcome = 'held_out'), OLD.held_out, OLD.state = 'converted', -1
	FROM decisions WHERE enrollment_id = OLD.id AND step_id <> '' GROUP BY step_id
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
	SELECT OLD.journey_id, OLD.version, OLD.entered_at / 86400000000, step_id, channel, status, -count(*)
	FROM messages WHERE enrollment_id = OLD.id GROUP BY step_id, channel, status
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	DELETE FROM report_conversions WHERE enrollment_id = OLD.id;
END;

-- Decisions deleted (erasure deletes a contact's decisions, then its
-- messages, then its enrollments): each counted once and, the last of its
-- kind for its enrollment, counted the enrollment; it may change its
-- step's path and its enrollment's cohort reason. "Before" is the
-- enrollment's decisions with this one, "after" without it.
CREATE TRIGGER report_decision_delete AFTER DELETE ON decisions
WHEN OLD.enrollment_id IS NOT NULL
BEGIN
	INSERT INTO report_outcomes (journey_id, version, day, step_id, channel, outcome, reason, decisions, enrollments)
	SELECT e.journey_id, e.version, e.entered_at / 86400000000, OLD.step_id, OLD.channel, OLD.outcome, OLD.reason, -1,
		-(NOT EXISTS (SELECT 1 FROM decisions d WHERE d.enrollment_id = OLD.enrollment_id
			AND d.step_id = OLD.step_id AND d.channel = OLD.channel AND d.outcome = OLD.outcome AND d.reason = OLD.reason))
	FROM enrollments e WHERE e.id = OLD.enrollment_id
	ON CONFLICT DO UPDATE SET decisions = decisions + excluded.decisions, enrollments = enrollments + excluded.enrollments;
	INSERT INTO report_paths (journey_id, version, day, step_id, sent, step_held, journey_held, converted, n)
	SELECT e.journey_id, e.version, e.entered_at / 86400000000, OLD.step_id,
		CASE WHEN x.n < 0 THEN max(coalesce(a.sent, 0), OLD.outcome = 'sent') ELSE a.sent END,
		CASE WHEN x.n < 0 THEN max(coalesce(a.held, 0), OLD.outcome = 'held_out') ELSE a.held END,
		e.held_out, e.state = 'converted', x.n
	FROM enrollments e,
		(SELECT count(*) AS after, max(outcome = 'sent') AS sent, max(outcome = 'held_out') AS held
		FROM decisions WHERE enrollment_id = OLD.enrollment_id AND step_id = OLD.step_id) a,
		(SELECT -1 AS n UNION ALL SELECT 1) x
	WHERE e.id = OLD.enrollment_id AND OLD.step_id <> '' AND (x.n < 0 OR a.after > 0)
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	INSERT INTO report_cohorts (journey_id, version, day, held_out, state, reason, n)
	SELECT e.journey_id, e.version, e.entered_at / 86400000000, e.held_out, e.state, x.reason, x.n
	FROM enrollments e,
		(SELECT coalesce((SELECT reason FROM (SELECT d.id, d.reason FROM decisions d WHERE d.enrollment_id = OLD.enrollment_id
				AND d.outcome IN ('converted', 'exited', 'completed') UNION ALL SELECT OLD.id, OLD.reason)
			ORDER BY id DESC LIMIT 1), '') AS reason, -1 AS n
		UNION ALL
		SELECT coalesce((SELECT d.reason FROM decisions d WHERE d.enrollment_id = OLD.enrollment_id
				AND d.outcome IN ('converted', 'exited', 'completed') ORDER BY d.id DESC LIMIT 1), ''), 1) x
	WHERE e.id = OLD.enrollment_id AND OLD.outcome IN ('converted', 'exited', 'completed')
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	UPDATE report_conversions SET steps = coalesce((SELECT group_concat(step_id) FROM (SELECT DISTINCT d.step_id FROM decisions d
			WHERE d.enrollment_id = OLD.enrollment_id AND d.step_id <> '' ORDER BY 1)), '')
	WHERE enrollment_id = OLD.enrollment_id AND OLD.step_id <> '';
END;

-- A message's status: moved when it changes; a converted enrollment's
-- touches follow a message cancelled.
CREATE TRIGGER report_message_status AFTER UPDATE OF status ON messages
WHEN NEW.status IS NOT OLD.status
BEGIN
	INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
	SELECT e.journey_id, e.version, e.entered_at / 86400000000, NEW.step_id, NEW.channel, x.status, x.n
	FROM enrollments e, (SELECT OLD.status AS status, -1 AS n UNION ALL SELECT NEW.status, 1) x
	WHERE e.id = NEW.enrollment_id
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	UPDATE report_conversions SET touches = coalesce((SELECT group_concat(t, char(30)) FROM (SELECT m.step_id || char(31) || m.channel || char(31) || m.created_at AS t
			FROM messages m WHERE m.enrollment_id = NEW.enrollment_id AND m.status <> 'cancelled' ORDER BY m.created_at, m.id)), '')
	WHERE enrollment_id = NEW.enrollment_id AND (NEW.status = 'cancelled' OR OLD.status = 'cancelled');
END;

CREATE TRIGGER report_message_delete AFTER DELETE ON messages
BEGIN
	INSERT INTO report_messages (journey_id, version, day, step_id, channel, status, n)
	SELECT e.journey_id, e.version, e.entered_at / 86400000000, OLD.step_id, OLD.channel, OLD.status, -1
	FROM enrollments e WHERE e.id = OLD.enrollment_id
	ON CONFLICT DO UPDATE SET n = n + excluded.n;
	UPDATE report_conversions SET touches = coalesce((SELECT group_concat(t, char(30)) FROM (SELECT m.step_id || char(31) || m.channel || char(31) || m.created_at AS t
			FROM messages m WHERE m.enrollment_id = OLD.enrollment_id AND m.status <> 'cancelled' ORDER BY m.created_at, m.id)), '')
	WHERE enrollment_id = OLD.enrollment_id;
END;
