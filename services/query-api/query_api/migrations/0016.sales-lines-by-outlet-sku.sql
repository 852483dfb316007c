-- depends: 0015.sales-lines
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
