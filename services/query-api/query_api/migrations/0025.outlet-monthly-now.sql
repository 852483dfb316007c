-- depends: 0024.geo-outlines
-- The per (outlet, month) rollup (0019) read as the other rollups are read since the fold (0018): the rollup plus the
-- order lines still queued for it, by the month of their day. Keyed by outlet, it needs no distributor or brand
-- placing: the reads join the outlet's distributor themselves.
CREATE VIEW sales_outlet_monthly_now AS
SELECT outlet_id, month, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
       returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
       delivered_units
FROM sales_outlet_monthly
UNION ALL
SELECT outlet_id, date_trunc('month', day)::date, value, units, lines, ordered_value, ordered_units, cancelled_value,
       cancelled_units, returned_value, returned_units, returned_damaged_units, returned_expired_units,
       returned_unsold_units, delivered_units
FROM sales_lines_unfolded;
