-- depends: 0003.runtime-outbox-generation
-- Set by each republish, cleared once the relay has read its topics back and found every published event there
-- (outbox_read_back.py): some brokers keep records sent to a topic they no longer know (Tansu after a restart)
-- and later shadow newer records at the same offsets, so a republish is only trusted once it reads back whole.
ALTER TABLE outbox_generation ADD COLUMN read_back_pending boolean NOT NULL DEFAULT false;
