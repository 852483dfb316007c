-- Latest stock position per distributor and SKU, from stock-ledger (highest version wins).
CREATE TABLE stock_positions (
    distributor_id text             NOT NULL,
    sku_id         text             NOT NULL,
    on_hand        bigint           NOT NULL,
    value          double precision NOT NULL,
    as_of          timestamptz      NOT NULL,
    version        integer          NOT NULL,
    PRIMARY KEY (distributor_id, sku_id)
);

-- Count variances (highest revision wins: a late event before a count revises it).
CREATE TABLE stock_variances (
    distributor_id text             NOT NULL,
    count_id       text             NOT NULL,
    sku_id         text             NOT NULL,
    counted_at     timestamptz      NOT NULL,
    book           bigint           NOT NULL,
    counted        bigint           NOT NULL,
    variance_units bigint           NOT NULL,
    variance_value double precision NOT NULL,
    revision       integer          NOT NULL,
    PRIMARY KEY (distributor_id, count_id, sku_id)
);

-- Current state of each alert (raised or cleared), highest version wins.
CREATE TABLE stock_alerts (
    distributor_id  text             NOT NULL,
    sku_id          text             NOT NULL,
    kind            text             NOT NULL,
    status          text             NOT NULL,
    on_hand         bigint           NOT NULL,
    avg_daily_sales double precision NOT NULL,
    days_of_cover   double precision,
    threshold_days  double precision,
    changed_at      timestamptz      NOT NULL,
    version         integer          NOT NULL,
    PRIMARY KEY (distributor_id, sku_id, kind)
);
CREATE INDEX stock_alerts_active ON stock_alerts (kind) WHERE status = 'raised';

-- Primary sales (sell-in) per invoice date, distributor and SKU.
CREATE TABLE primary_daily (
    day            date           NOT NULL,
    distributor_id text           NOT NULL,
    sku_id         text           NOT NULL,
    value          numeric(18, 4) NOT NULL,
    units          bigint         NOT NULL,
    PRIMARY KEY (day, distributor_id, sku_id)
);

-- Where each distributor sits, for every rollup that starts from distributor-level rows.
CREATE VIEW distributor_geography AS
SELECT d.distributor_id, d.name AS distributor_name, d.region_id, r.name AS region_name, r.zone_id, z.name AS zone_name
FROM distributors d
LEFT JOIN regions r ON r.region_id = d.region_id
LEFT JOIN zones z ON z.zone_id = r.zone_id;
