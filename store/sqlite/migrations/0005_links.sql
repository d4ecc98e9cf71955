-- 0005: tracked links (/c/{code}) and one-click unsubscribe tokens
-- (/u/{code}, channel 'unsubscribe'). A token keeps the keyed hash of the
-- email address it was sent to, never the address. No foreign keys: a
-- click on the link of an erased contact still redirects.

CREATE TABLE links (
	code         TEXT PRIMARY KEY,
	url          TEXT NOT NULL DEFAULT '',
	message_id   TEXT NOT NULL DEFAULT '',
	contact_id   TEXT NOT NULL DEFAULT '',
	journey_id   TEXT NOT NULL DEFAULT '',
	step_id      TEXT NOT NULL DEFAULT '',
	channel      TEXT NOT NULL,
	address_hash TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX links_message ON links (message_id);
CREATE INDEX links_contact ON links (contact_id);
