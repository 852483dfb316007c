-- depends: 0016.rollup-fillfactor
-- Issue 18, drill-down at 10M lines: outlet level with a SKU or brand filter read every line of each outlet (heap
-- pages scattered in arrival order: ~22k buffers for one distributor's outlets at 1M lines) to keep the few of the
-- SKU. Keyed (outlet, SKU, day) and carrying the measures, the index answers it alone (an index-only scan: the
-- table is append-only, so its pages are all-visible once vacuumed), reading only the SKU's (or the brand's SKUs')
-- entries of each outlet, side by side. It replaces (outlet_id, day): reads by outlet (re-homing moves, sales_daily
-- by outlet) use its leading column; one index entry per line either way.
CREATE INDEX sales_lines_by_outlet_sku ON sales_lines (outlet_id, sku_id, day)
    INCLUDE (value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units, returned_value,
             returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units, delivered_units);
DROP INDEX sales_lines_by_outlet;

-- Outlet level without a filter reads one distributor's outlets' days from sales_outlet_daily: ~11k rows at 10M
-- lines, each on a page of its own (rows land in arrival order, day after day), ~11.6k buffers. Its key carrying
-- the measures makes that an index-only scan of each outlet's days side by side. The same key: the live path's
-- ON CONFLICT (outlet_id, day) infers it as before.
ALTER TABLE sales_outlet_daily
    DROP CONSTRAINT sales_outlet_daily_pkey,
    ADD CONSTRAINT sales_outlet_daily_pkey PRIMARY KEY (outlet_id, day)
        INCLUDE (value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units, returned_value,
                 returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
                 delivered_units);

-- A SKU filter at national to distributor level reads the SKU's rows of sales_distributor_sku_daily (a row per
-- distributor and day: ~3.6k rows over 90 days, ~3.6k buffers, each row on a page of its own); carrying the
-- distributor and the measures, its SKU index answers alone.
CREATE INDEX sales_distributor_sku_daily_by_sku_covering ON sales_distributor_sku_daily (sku_id, day)
    INCLUDE (distributor_id, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
             returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
             delivered_units);
DROP INDEX sales_distributor_sku_daily_by_sku;
