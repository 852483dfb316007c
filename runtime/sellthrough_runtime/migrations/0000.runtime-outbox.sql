-- Transactional outbox: rows are written in the same transaction as the state that produced them and
-- published by the relay. Published rows are kept (published_at set) so a broker that lost its data can
-- be refilled from here.
CREATE TABLE outbox (
    seq            bigserial   PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    topic          text        NOT NULL,
    partition_key  text        NOT NULL,
    value          bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
