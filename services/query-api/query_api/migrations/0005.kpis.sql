-- depends: 0004.schemes
-- KPI projections. Like sales_daily they keep ids only; geography, brand and names are joined at read time,
-- so a late reference event re-homes past figures.

-- Secondary sales per business day, rep, outlet and SKU (sales_daily has no rep).
CREATE TABLE kpi_sales_daily (
    day       date           NOT NULL,
    rep_id    text           NOT NULL,
    outlet_id text           NOT NULL,
    sku_id    text           NOT NULL,
    value     numeric(18, 4) NOT NULL,
    units     bigint         NOT NULL,
    lines     integer        NOT NULL,
    PRIMARY KEY (day, rep_id, outlet_id, sku_id)
);
CREATE INDEX kpi_sales_daily_by_outlet ON kpi_sales_daily (outlet_id, day);

-- Orders (productive calls) and their lines per day, rep and outlet: lines per call needs whole orders.
CREATE TABLE kpi_orders_daily (
    day       date    NOT NULL,
    rep_id    text    NOT NULL,
    outlet_id text    NOT NULL,
    orders    integer NOT NULL,
    lines     integer NOT NULL,
    PRIMARY KEY (day, rep_id, outlet_id)
);

-- Visits (calls) per day, rep and outlet, and how many were productive: strike rate.
CREATE TABLE kpi_visits_daily (
    day        date    NOT NULL,
    rep_id     text    NOT NULL,
    outlet_id  text    NOT NULL,
    visits     integer NOT NULL,
    productive integer NOT NULL,
    PRIMARY KEY (day, rep_id, outlet_id)
);

-- Ordered units per order and SKU: fill rate compares them with what was delivered against the same order.
CREATE TABLE kpi_order_units (
    distributor_id text    NOT NULL,
    order_id       text    NOT NULL,
    sku_id         text    NOT NULL,
    day            date    NOT NULL,
    rep_id         text    NOT NULL,
    outlet_id      text    NOT NULL,
    units          bigint  NOT NULL,
    PRIMARY KEY (distributor_id, order_id, sku_id)
);
CREATE INDEX kpi_order_units_by_day ON kpi_order_units (day);

-- Delivered units per delivery day, outlet and SKU, with the order they fulfil (a delivery may come first).
CREATE TABLE kpi_deliveries (
    distributor_id text   NOT NULL,
    delivery_id    text   NOT NULL,
    sku_id         text   NOT NULL,
    order_id       text   NOT NULL,
    day            date   NOT NULL,
    outlet_id      text   NOT NULL,
    units          bigint NOT NULL,
    PRIMARY KEY (distributor_id, delivery_id, sku_id)
);
CREATE INDEX kpi_deliveries_by_order ON kpi_deliveries (distributor_id, order_id);
