-- depends: 0008.net-sales
-- What query-api needs, beside its sales facts (0008), to reconcile distributor stock itself: primary invoices and
-- stock adjustments as movements in event time, and distributor stock counts. GET /v1/reconciliation rebuilds
-- book stock from these and compares it with what the stock ledger reports (stock_positions).
CREATE TABLE reconciliation_movements (
    event_id       uuid        NOT NULL,
    sku_id         text        NOT NULL,
    distributor_id text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    kind           text        NOT NULL,  -- primary, adjustment
    units          bigint      NOT NULL,  -- signed: goods in are positive
    PRIMARY KEY (event_id, sku_id)
);
CREATE INDEX reconciliation_movements_by_position ON reconciliation_movements (distributor_id, sku_id, occurred_at);

CREATE TABLE reconciliation_counts (
    event_id       uuid        NOT NULL,
    sku_id         text        NOT NULL,
    distributor_id text        NOT NULL,
    count_id       text        NOT NULL,
    counted_at     timestamptz NOT NULL,
    quantity       bigint      NOT NULL,
    purpose        text        NOT NULL,
    PRIMARY KEY (event_id, sku_id)
);
CREATE INDEX reconciliation_counts_by_position ON reconciliation_counts (distributor_id, sku_id, counted_at);

CREATE INDEX sales_returns_by_distributor ON sales_returns (distributor_id, occurred_at);
CREATE INDEX sales_deliveries_by_distributor ON sales_deliveries (distributor_id, occurred_at);
