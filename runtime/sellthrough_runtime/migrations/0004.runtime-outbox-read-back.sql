-- depends: 0003.runtime-outbox-generation
-- Set by each republish, cleared once the relay has read its topics back and found every published event there
-- (outbox_read_back.py): some brokers keep records sent to a topic they no longer know (Tansu after a restart)
-- and later shadow newer records at the same offsets, so a republish is only trusted once it reads back whole.
ALTER TABLE outbox_generation ADD COLUMN read_back_pending boolean NOT NULL DEFAULT false;
-- The newest outbox row when the republish began: the read-back waits until every row up to it is published
-- again, not for an empty backlog, which a steady load may never leave.
ALTER TABLE outbox_generation ADD COLUMN republished_through bigint NOT NULL DEFAULT 0;
