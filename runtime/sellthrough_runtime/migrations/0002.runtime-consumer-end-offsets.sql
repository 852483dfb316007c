-- depends: 0001.runtime-consumer-last-record
-- The partition's end offset as the consumer last saw it, stored with the next offset, so a read API can
-- say how far behind the topic end a projection is (end_offset - next_offset) and as of when (updated_at).
ALTER TABLE consumer_offsets ADD COLUMN end_offset bigint;
