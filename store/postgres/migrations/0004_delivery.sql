-- 0004: delivery. Workers claim queued messages (FOR UPDATE SKIP LOCKED on
-- messages_queued_idx) for a lease (claimed_until), record the provider's
-- id, the attempts made and the last failure, and append every status
-- change to message_statuses, which is the message's complete history:
-- EngineCommit writes its first entry with the message.

ALTER TABLE messages
	ADD COLUMN provider_id   text NOT NULL DEFAULT '',
	ADD COLUMN attempts      integer NOT NULL DEFAULT 0,
	ADD COLUMN error         text NOT NULL DEFAULT '',
	ADD COLUMN claimed_until timestamptz;

-- Provider callbacks find their message by the provider's id.
CREATE INDEX messages_provider_idx ON messages (channel, provider_id, id) WHERE provider_id <> '';

-- Messages written before this migration get the history they would have:
-- queued when created, and their status now if they moved on.
INSERT INTO message_statuses (message_id, status, at)
SELECT id, 'queued', created_at FROM messages m
WHERE NOT EXISTS (SELECT 1 FROM message_statuses s WHERE s.message_id = m.id)
ORDER BY id;
INSERT INTO message_statuses (message_id, status, at)
SELECT id, status, updated_at FROM messages m
WHERE status <> 'queued'
	AND NOT EXISTS (SELECT 1 FROM message_statuses s WHERE s.message_id = m.id AND s.status = m.status)
ORDER BY id;
