-- 0008: the journey engine's changes of this release.
--
-- A contact change left in the inbox carries the contact as it was before
-- and after the change (nudge.Contact as JSON), so that an attribute
-- trigger fires when its condition goes from false to true, not on every
-- change of a contact who keeps matching. contact_before is NULL when the
-- change created the contact; both are NULL for a track event, and for the
-- items of changes stored before this migration.
ALTER TABLE inbox ADD COLUMN contact_before TEXT;
ALTER TABLE inbox ADD COLUMN contact_after TEXT;

-- Date triggers read the contacts of a few days through an index of their
-- date field: created_at here, updated_at by contacts_updated_at, and an
-- attribute by an expression index the store makes when a date trigger
-- first reads it.
CREATE INDEX contacts_created_at ON contacts (created_at, id);
