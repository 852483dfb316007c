-- depends: 0007.sales-by-rep
-- Net secondary sales. Every sales row and rollup carries what makes up its net figure: ordered, cancelled,
-- returned by retailers (by reason) and delivered. value, units and lines stay the columns every read uses, and
-- now hold the net figure: ordered - cancelled - returned (lines: order lines of orders not cancelled).
-- The facts behind the figures (orders, cancellations, deliveries, returns) are kept per event, so that arrival
-- order cannot change a figure (a cancellation before its order waits for it) and every figure can be listed as
-- the events that make it up (GET /v1/sales/events).

DO $$
DECLARE
    cube text;
BEGIN
    FOREACH cube IN ARRAY ARRAY['sales_daily', 'sales_outlet_daily', 'sales_distributor_daily',
                                'sales_distributor_brand_daily']
    LOOP
        EXECUTE format(
            'ALTER TABLE %I
                 ADD COLUMN ordered_value          numeric(18, 4) NOT NULL DEFAULT 0,
                 ADD COLUMN ordered_units          bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN cancelled_value        numeric(18, 4) NOT NULL DEFAULT 0,
                 ADD COLUMN cancelled_units        bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN returned_value         numeric(18, 4) NOT NULL DEFAULT 0,
                 ADD COLUMN returned_units         bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN returned_damaged_units bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN returned_expired_units bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN returned_unsold_units  bigint         NOT NULL DEFAULT 0,
                 ADD COLUMN delivered_units        bigint         NOT NULL DEFAULT 0', cube);
        -- Rows applied before this migration counted every order as placed: their ordered figures are their net.
        EXECUTE format('UPDATE %I SET ordered_value = value, ordered_units = units', cube);
    END LOOP;
END
$$;

-- One row per captured order (the first event_id to capture it wins), with where and when it was captured.
CREATE TABLE sales_orders (
    distributor_id text             NOT NULL,
    order_id       text             NOT NULL,
    event_id       uuid             NOT NULL,
    outlet_id      text             NOT NULL,
    rep_id         text             NOT NULL,
    day            date             NOT NULL,
    occurred_at    timestamptz      NOT NULL,
    recorded_at    timestamptz,
    source         text             NOT NULL,
    actor          text             NOT NULL,
    visit_id       text,
    lat            double precision,
    lon            double precision,
    accuracy_m     double precision,
    PRIMARY KEY (distributor_id, order_id)
);
CREATE INDEX sales_orders_by_outlet ON sales_orders (outlet_id, day);
CREATE INDEX sales_orders_by_day ON sales_orders (day);

-- An order's lines per SKU, and what of its cancellation and deliveries the sales rows already hold
-- (cancelled_counted, delivered_counted): a late cancellation or delivery moves the rows by the difference.
CREATE TABLE sales_order_skus (
    distributor_id    text           NOT NULL,
    order_id          text           NOT NULL,
    sku_id            text           NOT NULL,
    ordered_units     bigint         NOT NULL,
    ordered_value     numeric(18, 4) NOT NULL,
    lines             integer        NOT NULL,
    cancelled_counted boolean        NOT NULL DEFAULT false,
    delivered_counted bigint         NOT NULL DEFAULT 0,
    PRIMARY KEY (distributor_id, order_id, sku_id)
);

CREATE TABLE sales_cancellations (
    distributor_id text        NOT NULL,
    order_id       text        NOT NULL,
    event_id       uuid        NOT NULL,
    outlet_id      text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz,
    source         text        NOT NULL,
    actor          text        NOT NULL,
    reason         text        NOT NULL,
    PRIMARY KEY (distributor_id, order_id)
);

CREATE TABLE sales_deliveries (
    distributor_id text        NOT NULL,
    delivery_id    text        NOT NULL,
    event_id       uuid        NOT NULL,
    order_id       text        NOT NULL,
    outlet_id      text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz,
    source         text        NOT NULL,
    actor          text        NOT NULL,
    PRIMARY KEY (distributor_id, delivery_id)
);
CREATE INDEX sales_deliveries_by_order ON sales_deliveries (distributor_id, order_id);
CREATE TABLE sales_delivery_lines (
    distributor_id text   NOT NULL,
    delivery_id    text   NOT NULL,
    sku_id         text   NOT NULL,
    units          bigint NOT NULL,
    PRIMARY KEY (distributor_id, delivery_id, sku_id)
);

-- Returns, both directions (the reconciliation needs returns to the company too). Retailer returns lower net
-- sales on the day they were recorded, valued at the SKU's list price (counted_value: what the sales rows hold;
-- null until the SKU is known).
CREATE TABLE sales_returns (
    distributor_id text        NOT NULL,
    return_id      text        NOT NULL,
    event_id       uuid        NOT NULL,
    outlet_id      text,
    direction      text        NOT NULL,
    reason         text        NOT NULL,
    day            date        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz,
    source         text        NOT NULL,
    actor          text        NOT NULL,
    PRIMARY KEY (distributor_id, return_id)
);
CREATE INDEX sales_returns_by_outlet ON sales_returns (outlet_id, day);
CREATE TABLE sales_return_lines (
    distributor_id text           NOT NULL,
    return_id      text           NOT NULL,
    sku_id         text           NOT NULL,
    units          bigint         NOT NULL,
    counted_value  numeric(18, 4),
    PRIMARY KEY (distributor_id, return_id, sku_id)
);
CREATE INDEX sales_return_lines_by_sku ON sales_return_lines (sku_id);

-- Fill rate reads the order facts above (a delivery sent twice under two event ids counted twice here).
DROP TABLE kpi_order_units;
DROP TABLE kpi_deliveries;
