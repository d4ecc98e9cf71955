-- 0008: the journey engine's changes of this release.
--
-- A contact change left in the inbox carries the contact as it was before
-- and after the change (nudge.Contact as JSON), so that an attribute
-- trigger fires when its condition goes from false to true, not on every
-- change of a contact who keeps matching. contact_before is NULL when the
-- change created the contact; both are NULL for a track event, and for the
-- items of changes stored before this migration.
ALTER TABLE inbox ADD COLUMN contact_before jsonb, ADD COLUMN contact_after jsonb;
