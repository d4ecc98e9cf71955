-- 0009 delivery: the sending entries of the status history, by time, for
-- MessageSMSSegments (a journey's SMS budget counts the segments of the
-- texts it sent since midnight).
CREATE INDEX message_statuses_sending ON message_statuses (at) WHERE status = 'sending';
