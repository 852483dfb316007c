-- depends: 0002.runtime-outbox-partitions
-- How many times this outbox was republished because the broker lost records. Every record the relay
-- publishes carries it (header outbox_generation = "<service>:<generation>"): a consumer that meets a higher
-- generation than it has seen from that service knows the partition was rebuilt under it, even if it never
-- rejoined its group, and re-reads the partition from the beginning.
CREATE TABLE outbox_generation (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint  NOT NULL
);
INSERT INTO outbox_generation (generation) VALUES (0);
