-- Dimensions: this service's copy of the masters, from the reference topic (a later occurred_at wins).
CREATE TABLE zones (
    zone_id     text PRIMARY KEY,
    name        text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE regions (
    region_id   text PRIMARY KEY,
    name        text NOT NULL,
    zone_id     text,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE distributors (
    distributor_id text PRIMARY KEY,
    name           text NOT NULL,
    region_id      text NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX distributors_by_region ON distributors (region_id);
CREATE TABLE outlets (
    outlet_id      text PRIMARY KEY,
    name           text NOT NULL,
    distributor_id text NOT NULL,
    channel        text NOT NULL,
    outlet_class   text NOT NULL,
    lat            double precision NOT NULL,
    lon            double precision NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX outlets_by_distributor ON outlets (distributor_id);
CREATE TABLE skus (
    sku_id      text PRIMARY KEY,
    name        text NOT NULL,
    brand       text NOT NULL,
    category    text NOT NULL,
    list_price  numeric(18, 4) NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE TABLE reps (
    rep_id         text PRIMARY KEY,
    name           text NOT NULL,
    distributor_id text NOT NULL,
    occurred_at    timestamptz NOT NULL
);

-- Secondary sales per business day, outlet and SKU. Geography is joined at read time, so a late
-- reference event re-homes past sales correctly.
CREATE TABLE sales_daily (
    day       date           NOT NULL,
    outlet_id text           NOT NULL,
    sku_id    text           NOT NULL,
    value     numeric(18, 4) NOT NULL,
    units     bigint         NOT NULL,
    lines     integer        NOT NULL,
    PRIMARY KEY (day, outlet_id, sku_id)
);
CREATE INDEX sales_daily_by_outlet ON sales_daily (outlet_id, day);

-- Freshness of each projection: the newest event applied, by source time and by server time.
CREATE TABLE projection_freshness (
    projection         text PRIMARY KEY,
    newest_occurred_at timestamptz NOT NULL,
    newest_recorded_at timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
