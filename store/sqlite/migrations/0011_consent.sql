-- A consent change may carry an idempotency key (an inbound SMS's provider
-- id): a retried webhook appends nothing the second time. Entries recorded
-- for an address that no contact has yet have a NULL contact_id.
ALTER TABLE consent_ledger ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX consent_ledger_idempotency ON consent_ledger (idempotency_key)
	WHERE idempotency_key IS NOT NULL;
