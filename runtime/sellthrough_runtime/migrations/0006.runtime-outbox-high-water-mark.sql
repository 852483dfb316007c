-- depends: 0004.runtime-outbox-read-back
-- The relay's progress is one number, not a mark on every row: every outbox row with seq <= published_through was
-- published (or its seq was never used: a rolled-back insert). Marking rows cost an UPDATE, a new row version and
-- an index entry per event; this is one UPDATE per batch. A republish sets it back to below the oldest row kept.
CREATE TABLE outbox_progress (
    only_row          boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    published_through bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Rows published out of seq order before this release (the old relay marked rows one by one) are published
-- again from the first unpublished one: a duplicate copy, which consumers skip.
INSERT INTO outbox_progress (published_through)
SELECT coalesce((SELECT min(seq) - 1 FROM outbox WHERE published_at IS NULL), (SELECT max(seq) FROM outbox), 0);
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;
-- Idempotency is order-capture's idempotency_keys (and a consumer's processed_events); a second unique index on
-- the outbox cost every insert an index probe and write, and nothing reads rows by event id on a hot path.
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
-- Published rows that a read-back after a republish could not find (a broker shadowing them with records it took
-- for a topic it no longer knew): the relay sends these again, in seq order, before what follows its mark, instead
-- of republishing the whole outbox once more (log_recovery/relay_side.py).
CREATE TABLE outbox_resend (
    seq bigint PRIMARY KEY
);
