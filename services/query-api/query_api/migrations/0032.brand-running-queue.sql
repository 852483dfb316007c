-- depends: 0031.drop-outlet-monthly
-- Issue 18, the live path (round 5): the running totals per (brand, outlet) (0028) were kept by every fold, which
-- rewrote a pair's rows from its earliest new day on for every fold's lines (per folded row backend CPU 58 -> 101 us,
-- WAL 1,741 -> 3,074 B, docs/benchmarks.md). They now move on the running totals' interval with the outlets' (0030):
-- the fold queues its lines per (outlet, brand, day) in sales_outlet_running_unfolded, and the move
-- (projections/sales_running.py, FOLD_RUNNING) groups them per (outlet, day) for the outlets' tables and per
-- (brand, outlet, day) for the brands', in one statement with the DELETE that takes them off the queue.
-- `brand`: the SKU's brand when the fold queued the row (a re-brand folds both queues first, under the exclusive
-- rollup lock, so it is the brand now); NULL for lines of a SKU without one, which only the outlets' tables count.
-- `rows`: the sales_lines rows summed (sales_outlet_brand_running.rows).
-- The rows queued before this migration were added to the brand tables by the fold that queued them: NULL brand,
-- so the move adds them to the outlets' tables only.
ALTER TABLE sales_outlet_running_unfolded ADD COLUMN brand text, ADD COLUMN rows bigint NOT NULL DEFAULT 0;
ALTER TABLE sales_outlet_running_unfolded ALTER COLUMN rows DROP DEFAULT;

-- A pair's last day is kept in its totals row only (sales_brand_running.py): the read looks a running row up only
-- for a day before the pair's last, and a live line (of the pair's last day, or a later one) then writes one row,
-- its totals, rather than two; the running row of a day is written once, when a later day's line makes it a past
-- day. The rows of the pairs' last days are dropped.
DELETE FROM sales_outlet_brand_running r
USING sales_outlet_brand_totals t
WHERE r.brand = t.brand AND r.outlet_id = t.outlet_id AND r.day = t.day;
