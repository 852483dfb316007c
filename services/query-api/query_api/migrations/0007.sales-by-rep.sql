-- depends: 0006.sales-rollups
-- One per-line cube for the drill-down and the KPIs: sales_daily gains the rep, and kpi_sales_daily (the same
-- figures with the rep in its key) goes. Each order line now takes one row and its index entries, not two.
-- Rows already applied come from kpi_sales_daily, which holds every OrderCaptured line that sales_daily does.
CREATE TABLE sales_daily_by_rep (
    day       date           NOT NULL,
    outlet_id text           NOT NULL,
    sku_id    text           NOT NULL,
    rep_id    text           NOT NULL,
    value     numeric(18, 4) NOT NULL,
    units     bigint         NOT NULL,
    lines     integer        NOT NULL,
    CONSTRAINT sales_daily_by_rep_pkey PRIMARY KEY (day, outlet_id, sku_id, rep_id)
);
INSERT INTO sales_daily_by_rep (day, outlet_id, sku_id, rep_id, value, units, lines)
SELECT day, outlet_id, sku_id, rep_id, value, units, lines FROM kpi_sales_daily;

DROP TABLE kpi_sales_daily;
DROP TABLE sales_daily;
ALTER TABLE sales_daily_by_rep RENAME TO sales_daily;
ALTER TABLE sales_daily RENAME CONSTRAINT sales_daily_by_rep_pkey TO sales_daily_pkey;
CREATE INDEX sales_daily_by_outlet ON sales_daily (outlet_id, day);
CREATE INDEX sales_daily_by_sku ON sales_daily (sku_id, day);
