-- depends: 0002.runtime-consumer-end-offsets
-- Per partition, the highest outbox generation applied from each publishing service ({"order-capture": 2}),
-- stored with the offset it goes with (see 0003.runtime-outbox-generation).
ALTER TABLE consumer_offsets ADD COLUMN producer_generations jsonb NOT NULL DEFAULT '{}';
