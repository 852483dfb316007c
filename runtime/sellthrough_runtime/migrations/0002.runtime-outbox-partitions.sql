-- depends: 0001.runtime-outbox-trace-context
-- The offset the relay expects next on each partition it publishes to. The broker gives one relay (they take
-- turns) ever-growing offsets, so a delivery below this means the broker lost records (memory storage, a
-- recreated topic) and the relay republishes the outbox.
CREATE TABLE outbox_partitions (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
