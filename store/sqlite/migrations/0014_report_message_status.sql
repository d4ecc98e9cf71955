-- 0014: a message's status is counted by MessageUpdate and EngineCommit,
-- once per call (store/sqlite/reportcount.go), not by a trigger per row:
-- a text changes status two or three times on its way out, and the
-- trigger, which read the message's enrollment and upserted two counter
-- rows each time, cost 10-20% of the CPU of a text.
DROP TRIGGER report_message_status;
