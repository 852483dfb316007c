-- This service's copy of the masters targeting needs (reference topic; a later occurred_at wins).
CREATE TABLE outlets (
    outlet_id      text PRIMARY KEY,
    distributor_id text NOT NULL,
    channel        text NOT NULL,
    outlet_class   text NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE TABLE distributors (
    distributor_id text PRIMARY KEY,
    region_id      text NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE TABLE regions (
    region_id   text PRIMARY KEY,
    zone_id     text,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE skus (
    sku_id      text PRIMARY KEY,
    brand       text NOT NULL,
    occurred_at timestamptz NOT NULL
);

-- Every scheme event as received (its wire form): SchemesState is rebuilt from them, in any order.
CREATE TABLE scheme_events (
    event_id  uuid PRIMARY KEY,
    scheme_id text  NOT NULL,
    body      jsonb NOT NULL
);
CREATE INDEX scheme_events_by_scheme ON scheme_events (scheme_id);

-- Every captured order as received; the order context is rebuilt with the masters known at evaluation.
CREATE TABLE orders (
    event_id       uuid PRIMARY KEY,
    order_id       text        NOT NULL,
    distributor_id text        NOT NULL,
    outlet_id      text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    body           jsonb       NOT NULL
);
CREATE INDEX orders_by_time ON orders (occurred_at);
CREATE INDEX orders_by_order ON orders (distributor_id, order_id);

-- Cancellations may arrive before their order: kept apart, matched by (distributor, order id).
CREATE TABLE cancelled_orders (
    distributor_id text NOT NULL,
    order_id       text NOT NULL,
    PRIMARY KEY (distributor_id, order_id)
);

-- What each order earned under each scheme after stacking, before budgets (a SchemeBenefit as JSON).
-- Budgets are re-allocated from these rows whenever a scheme is touched.
CREATE TABLE earned (
    scheme_id      text        NOT NULL,
    order_event_id uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    benefit        jsonb       NOT NULL,
    PRIMARY KEY (scheme_id, order_event_id)
);
CREATE INDEX earned_by_order ON earned (order_event_id);

-- Last emitted grant per (scheme, order), to emit only changes and number them.
CREATE TABLE applied (
    scheme_id        text           NOT NULL,
    order_event_id   uuid           NOT NULL,
    order_id         text           NOT NULL,
    outlet_id        text           NOT NULL,
    distributor_id   text           NOT NULL,
    occurred_at      timestamptz    NOT NULL,
    discount_value   numeric(18, 4) NOT NULL,
    free_units       integer        NOT NULL,
    free_units_cost  numeric(18, 4) NOT NULL,
    qualifying_units integer        NOT NULL,
    limited_by       text,
    revision         integer        NOT NULL,
    PRIMARY KEY (scheme_id, order_event_id)
);

-- Claims received and how many times each was assessed.
CREATE TABLE claims (
    distributor_id text    NOT NULL,
    claim_id       text    NOT NULL,
    scheme_id      text    NOT NULL,
    body           jsonb   NOT NULL,
    revision       integer NOT NULL,
    PRIMARY KEY (distributor_id, claim_id)
);
