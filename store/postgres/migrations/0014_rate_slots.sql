-- 0014: the delivery rate limits' slots, shared by every node on this
-- database (delivery.Config.Slots). rate_slots has each limit's next free
-- slot (a sending number, a provider, the workspace); rate_holds the slot
-- a deferred message holds, so that whichever node claims it next goes on
-- from there instead of reserving again. Times are the workers' clocks.

CREATE TABLE rate_slots (
	key     text COLLATE "C" PRIMARY KEY,
	next_at timestamptz NOT NULL
);

CREATE TABLE rate_holds (
	message_id text COLLATE "C" PRIMARY KEY,
	level      integer NOT NULL,
	at         timestamptz NOT NULL
);
