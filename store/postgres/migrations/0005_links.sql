-- 0005: tracked links (/c/{code}) and one-click unsubscribe tokens
-- (/u/{code}, channel 'unsubscribe'). A token keeps the keyed hash of the
-- email address it was sent to, never the address. No foreign keys: a
-- click on the link of an erased contact still redirects.

CREATE TABLE links (
	code         text COLLATE "C" PRIMARY KEY,
	url          text NOT NULL DEFAULT '',
	message_id   text COLLATE "C" NOT NULL DEFAULT '',
	contact_id   text COLLATE "C" NOT NULL DEFAULT '',
	journey_id   text NOT NULL DEFAULT '',
	step_id      text NOT NULL DEFAULT '',
	channel      text NOT NULL,
	address_hash text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL
);
CREATE INDEX links_message ON links (message_id);
CREATE INDEX links_contact ON links (contact_id);
