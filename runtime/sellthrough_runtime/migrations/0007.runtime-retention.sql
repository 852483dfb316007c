-- depends: 0006.runtime-outbox-high-water-mark 0004.runtime-consumer-dead-letter-replay
-- Retention (retention.py) deletes processed event ids older than their window. A BRIN index finds them: rows are
-- appended in applied_at order, so a few pages of summary cover the table (a btree would cost every insert).
CREATE INDEX processed_events_applied_at ON processed_events USING brin (applied_at);
