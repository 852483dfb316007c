-- Exactly-once effects for consumers: the next offset to read per partition and the ids of applied
-- events are written in the same transaction as the projection change they produced.
CREATE TABLE consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

CREATE TABLE processed_events (
    group_id   text        NOT NULL,
    event_id   uuid        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, event_id)
);

-- Records a consumer could not apply, with the reason; the consumer moves on past them.
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    event_id    uuid,
    event_type  text,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    raw         bytea,
    raw_digest  bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (group_id, topic, partition, "offset", raw_digest)
);
CREATE INDEX dead_letters_by_group ON dead_letters (group_id, received_at);
