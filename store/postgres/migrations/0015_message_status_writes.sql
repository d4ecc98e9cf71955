-- 0015: cheaper status writes. A message changes status two or three
-- times on its way out (queued, sending, sent, delivered), and an update
-- that changes an indexed column writes a new entry in every index of the
-- table. messages_status_idx (status, id) goes: messages_status_created_idx
-- (status, created_at, id) serves the console's messages log and the
-- stuck messages' read; only paging one status in id order (the crash and
-- soak harnesses' checks) now filters it without an index of its own.
DROP INDEX messages_status_idx;
