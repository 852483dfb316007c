-- depends: 0017.drill-covering-indexes
-- Issue 18, the live path: the consumer's transaction appends an order's lines to sales_lines and, instead of
-- upserting the four rollups per batch (45% of a batch's database time), queues the same rows here. A fold
-- (projections/sales_fold.py, a query-api job) moves the queued rows into the rollups in larger groups, in its own
-- transaction: DELETE ... RETURNING from this table and the rollup upserts commit together, so a row is always in
-- exactly one of the two places. Reads stay exact by reading the `*_now` views below: the rollup plus the rows not
-- folded yet, placed under the outlet's distributor and the SKU's brand known now (what the fold will use: a
-- reference change folds first, under the exclusive rollup lock, sales_rollups.py).
-- No index and no key: rows are only appended and deleted in bulk; reads scan it whole (it holds what arrived in
-- the last fold interval). Autovacuum is told to keep up with the churn of deleted rows.
CREATE TABLE sales_lines_unfolded (
    day                    date           NOT NULL,
    outlet_id              text           NOT NULL,
    sku_id                 text           NOT NULL,
    value                  numeric(18, 4) NOT NULL,
    units                  bigint         NOT NULL,
    lines                  integer        NOT NULL,
    ordered_value          numeric(18, 4) NOT NULL,
    ordered_units          bigint         NOT NULL,
    cancelled_value        numeric(18, 4) NOT NULL,
    cancelled_units        bigint         NOT NULL,
    returned_value         numeric(18, 4) NOT NULL,
    returned_units         bigint         NOT NULL,
    returned_damaged_units bigint         NOT NULL,
    returned_expired_units bigint         NOT NULL,
    returned_unsold_units  bigint         NOT NULL,
    delivered_units        bigint         NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000);

CREATE VIEW sales_outlet_daily_now AS
SELECT outlet_id, day, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
       returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
       delivered_units
FROM sales_outlet_daily
UNION ALL
SELECT outlet_id, day, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
       returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
       delivered_units
FROM sales_lines_unfolded;

CREATE VIEW sales_distributor_daily_now AS
SELECT day, distributor_id, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
       returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
       delivered_units
FROM sales_distributor_daily
UNION ALL
SELECT u.day, o.distributor_id, u.value, u.units, u.lines, u.ordered_value, u.ordered_units, u.cancelled_value,
       u.cancelled_units, u.returned_value, u.returned_units, u.returned_damaged_units, u.returned_expired_units,
       u.returned_unsold_units, u.delivered_units
FROM sales_lines_unfolded u LEFT JOIN outlets o ON o.outlet_id = u.outlet_id;

CREATE VIEW sales_distributor_brand_daily_now AS
SELECT day, distributor_id, brand, value, units, lines, ordered_value, ordered_units, cancelled_value,
       cancelled_units, returned_value, returned_units, returned_damaged_units, returned_expired_units,
       returned_unsold_units, delivered_units
FROM sales_distributor_brand_daily
UNION ALL
SELECT u.day, o.distributor_id, k.brand, u.value, u.units, u.lines, u.ordered_value, u.ordered_units,
       u.cancelled_value, u.cancelled_units, u.returned_value, u.returned_units, u.returned_damaged_units,
       u.returned_expired_units, u.returned_unsold_units, u.delivered_units
FROM sales_lines_unfolded u LEFT JOIN outlets o ON o.outlet_id = u.outlet_id LEFT JOIN skus k ON k.sku_id = u.sku_id;

CREATE VIEW sales_distributor_sku_daily_now AS
SELECT day, distributor_id, sku_id, value, units, lines, ordered_value, ordered_units, cancelled_value,
       cancelled_units, returned_value, returned_units, returned_damaged_units, returned_expired_units,
       returned_unsold_units, delivered_units
FROM sales_distributor_sku_daily
UNION ALL
SELECT u.day, o.distributor_id, u.sku_id, u.value, u.units, u.lines, u.ordered_value, u.ordered_units,
       u.cancelled_value, u.cancelled_units, u.returned_value, u.returned_units, u.returned_damaged_units,
       u.returned_expired_units, u.returned_unsold_units, u.delivered_units
FROM sales_lines_unfolded u LEFT JOIN outlets o ON o.outlet_id = u.outlet_id;
