-- depends: 0001.ledger
-- SkuRegistered v2: a SKU may set the stock, in units, at or below which it is never overstock (null: settings).
ALTER TABLE skus ADD COLUMN overstock_min_units integer;
