-- SKU prices and cover norms, from SkuRegistered.
CREATE TABLE skus (
    sku_id         text           PRIMARY KEY,
    list_price     numeric(18, 4) NOT NULL,
    max_cover_days integer,
    min_cover_days integer,
    occurred_at    timestamptz    NOT NULL
);

-- Every stock movement, one row per event line, at its event time. Late events are inserts, never rewrites
-- of later rows: book stock is computed from the latest count plus the active movements after it.
CREATE TABLE movements (
    event_id       uuid        NOT NULL,
    line_no        integer     NOT NULL,
    distributor_id text        NOT NULL,
    sku_id         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    kind           text        NOT NULL,  -- primary, order, delivery, return_in, return_out, adjustment
    delta          bigint      NOT NULL,
    order_id       text,                  -- for order and delivery movements
    active         boolean     NOT NULL DEFAULT true,
    PRIMARY KEY (event_id, line_no)
);
CREATE INDEX movements_by_position ON movements (distributor_id, sku_id, occurred_at);
CREATE INDEX movements_by_order ON movements (distributor_id, order_id) WHERE order_id IS NOT NULL;

-- What is known of each order: a delivered or cancelled order no longer moves stock by its ordered
-- quantities (a delivery moves it by the delivered ones).
CREATE TABLE orders (
    distributor_id text    NOT NULL,
    order_id       text    NOT NULL,
    delivered      boolean NOT NULL DEFAULT false,
    cancelled      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (distributor_id, order_id)
);

-- Physical counts, one row per counted SKU: resets of book stock at their event time.
CREATE TABLE counts (
    event_id       uuid        NOT NULL,
    sku_id         text        NOT NULL,
    count_id       text        NOT NULL,
    distributor_id text        NOT NULL,
    counted_at     timestamptz NOT NULL,
    quantity       bigint      NOT NULL,
    purpose        text        NOT NULL,  -- count, opening
    PRIMARY KEY (event_id, sku_id)
);
CREATE INDEX counts_by_position ON counts (distributor_id, sku_id, counted_at);

-- Last emitted state, to emit only changes (and to number them).
CREATE TABLE positions (
    distributor_id text        NOT NULL,
    sku_id         text        NOT NULL,
    on_hand        bigint      NOT NULL,
    as_of          timestamptz NOT NULL,
    version        integer     NOT NULL,
    PRIMARY KEY (distributor_id, sku_id)
);
CREATE TABLE variances (
    count_event_id uuid    NOT NULL,
    sku_id         text    NOT NULL,
    book           bigint  NOT NULL,
    counted        bigint  NOT NULL,
    revision       integer NOT NULL,
    PRIMARY KEY (count_event_id, sku_id)
);
CREATE TABLE alerts (
    distributor_id text    NOT NULL,
    sku_id         text    NOT NULL,
    kind           text    NOT NULL,
    active         boolean NOT NULL,
    version        integer NOT NULL,
    PRIMARY KEY (distributor_id, sku_id, kind)
);
