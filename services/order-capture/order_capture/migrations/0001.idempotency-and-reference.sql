-- One row per accepted event_id: the idempotency record. Written in the same transaction as the outbox row.
CREATE TABLE idempotency_keys (
    event_id     uuid        PRIMARY KEY,
    content_hash bytea       NOT NULL,
    event_type   text        NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now()
);

-- This service's own copy of the masters it validates against, built from the reference topic.
CREATE TABLE known_distributors (
    distributor_id text        PRIMARY KEY,
    occurred_at    timestamptz NOT NULL
);
CREATE TABLE known_outlets (
    outlet_id      text        PRIMARY KEY,
    distributor_id text        NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE TABLE known_skus (
    sku_id      text        PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE known_reps (
    rep_id         text        PRIMARY KEY,
    distributor_id text        NOT NULL,
    occurred_at    timestamptz NOT NULL
);
