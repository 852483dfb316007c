-- depends: 0000.runtime-consumer
-- A digest of the last applied record per partition. On assignment the consumer re-reads that record: if the
-- broker holds different bytes there, the partition was rebuilt (broker lost its data, the outbox was
-- republished) and the consumer re-reads it from the beginning instead of skipping records it never saw.
ALTER TABLE consumer_offsets ADD COLUMN last_record_digest bytea;
