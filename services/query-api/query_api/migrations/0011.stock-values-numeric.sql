-- depends: 0010.visits
-- Stock values are money: numeric like every other amount, not binary floats (StockPositionChanged and
-- StockVarianceRecorded carry decimal strings from their schema version 2). Values already applied came from
-- quantities times 4-place prices, so rounding to 4 places recovers them exactly.
ALTER TABLE stock_positions ALTER COLUMN value TYPE numeric(18, 4) USING round(value::numeric, 4);
ALTER TABLE stock_variances ALTER COLUMN variance_value TYPE numeric(18, 4) USING round(variance_value::numeric, 4);
