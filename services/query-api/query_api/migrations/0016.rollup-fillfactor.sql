-- depends: 0015.sales-lines
-- The live projection adds each batch to its rollups with INSERT ... ON CONFLICT DO UPDATE: once a rollup row
-- exists, every later batch touching it writes a new version of it. With full pages (fillfactor 100) about 40% of
-- those versions went to another page, i.e. a new entry in every index of the table (primary key and the by-day,
-- by-brand or by-SKU index); with room left on each page they stay on it (a HOT update, no index entry), which
-- measured 95-100% HOT on 100k order lines over 30 days (docs/benchmarks.md, round 2 findings). Only the figures
-- change on an update, never an indexed column, so the room is all they need. Applies to pages written from now
-- on (no rewrite, a brief SHARE UPDATE EXCLUSIVE lock).
ALTER TABLE sales_outlet_daily SET (fillfactor = 70);
ALTER TABLE sales_distributor_daily SET (fillfactor = 70);
ALTER TABLE sales_distributor_brand_daily SET (fillfactor = 70);
ALTER TABLE sales_distributor_sku_daily SET (fillfactor = 70);
