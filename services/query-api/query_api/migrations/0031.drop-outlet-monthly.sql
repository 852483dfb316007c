-- depends: 0030.outlet-running-queue
-- Issue 18, the live path (round 5): the per (outlet, month) rollup (0019) and its `_now` view (0025) are read by
-- nothing since the outlets' running totals (0027) answer outlet level across distributors; every fold still
-- upserted ~1 row of it per 3.6 folded lines (~6% of the fold). Dropped, with its upkeep in the fold and the bulk load.
DROP VIEW sales_outlet_monthly_now;
DROP TABLE sales_outlet_monthly;
