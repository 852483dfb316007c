-- depends: 0005.kpis
-- Rollups of sales_daily that the drill-down reads instead of scanning every (day, outlet, SKU) row: the
-- same figures at a coarser grain, written in the same statement as sales_daily (sales_rollups.py).

-- Per business day and outlet. Geography is still joined at read time (outlets -> distributors -> ...),
-- so nothing here changes when reference data does.
CREATE TABLE sales_outlet_daily (
    outlet_id text           NOT NULL,
    day       date           NOT NULL,
    value     numeric(18, 4) NOT NULL,
    units     bigint         NOT NULL,
    lines     integer        NOT NULL,
    PRIMARY KEY (outlet_id, day)
);
CREATE INDEX sales_outlet_daily_by_day ON sales_outlet_daily (day);

-- Per business day and distributor (of the outlet), and the same per brand (of the SKU): what national, zone,
-- region and distributor levels read, without and with a brand filter. The outlet -> distributor and
-- SKU -> brand mapping is resolved when sales are applied, and when a reference event changes it (an outlet
-- re-homed, a SKU re-branded, a master arriving after its sales) the affected figures are moved in the same
-- transaction. Null: not known yet.
CREATE TABLE sales_distributor_daily (
    day            date           NOT NULL,
    distributor_id text,
    value          numeric(18, 4) NOT NULL,
    units          bigint         NOT NULL,
    lines          integer        NOT NULL,
    CONSTRAINT sales_distributor_daily_key UNIQUE NULLS NOT DISTINCT (day, distributor_id)
);
CREATE TABLE sales_distributor_brand_daily (
    day            date           NOT NULL,
    distributor_id text,
    brand          text,
    value          numeric(18, 4) NOT NULL,
    units          bigint         NOT NULL,
    lines          integer        NOT NULL,
    CONSTRAINT sales_distributor_brand_daily_key UNIQUE NULLS NOT DISTINCT (day, distributor_id, brand)
);
CREATE INDEX sales_distributor_brand_daily_by_brand ON sales_distributor_brand_daily (brand, day);

-- Brand or SKU filters at outlet level read sales_daily by outlet; a SKU filter at any level by SKU.
CREATE INDEX sales_daily_by_sku ON sales_daily (sku_id, day);

-- Sales already applied before this migration.
INSERT INTO sales_outlet_daily (outlet_id, day, value, units, lines)
SELECT outlet_id, day, sum(value), sum(units), sum(lines) FROM sales_daily GROUP BY outlet_id, day;

INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, value, units, lines)
SELECT s.day, o.distributor_id, k.brand, sum(s.value), sum(s.units), sum(s.lines)
FROM sales_daily s
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
LEFT JOIN skus k ON k.sku_id = s.sku_id
GROUP BY s.day, o.distributor_id, k.brand;

INSERT INTO sales_distributor_daily (day, distributor_id, value, units, lines)
SELECT day, distributor_id, sum(value), sum(units), sum(lines) FROM sales_distributor_brand_daily
GROUP BY day, distributor_id;
