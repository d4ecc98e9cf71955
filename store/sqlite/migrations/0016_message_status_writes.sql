-- 0016: cheaper status writes. A message changes status two or three
-- times on its way out (queued, sending, sent, delivered), and each change
-- moved its entry in every index that holds the status.
--
-- messages_status (status, id) goes: messages_status_created (status,
-- created_at, id) serves the console's messages log and the stuck
-- messages' read; only paging one status in id order (the crash and soak
-- harnesses' checks) now filters it without an index of its own.
DROP INDEX IF EXISTS messages_status; -- a private store from before 0016 slimmed it away

-- message_statuses loses AUTOINCREMENT, which read and wrote the
-- sqlite_sequence row at each history entry. Ids still grow: a new entry
-- takes the largest id plus one, so a message's entries stay in the order
-- written (an id is reused only after the entry with the largest id was
-- erased, and then it is larger than every entry there is).
CREATE TABLE message_statuses_new (
	id         INTEGER PRIMARY KEY,
	message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	status     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '{}',
	at         INTEGER NOT NULL
) STRICT;
INSERT INTO message_statuses_new (id, message_id, status, detail, at)
	SELECT id, message_id, status, detail, at FROM message_statuses;
DROP TABLE message_statuses;
ALTER TABLE message_statuses_new RENAME TO message_statuses;
CREATE INDEX message_statuses_message ON message_statuses (message_id, id);
CREATE INDEX message_statuses_sending ON message_statuses (at) WHERE status = 'sending';
