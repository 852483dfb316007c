-- depends: 0006.idempotency-key-retention
-- Issue 19, formats: a SKU's case size (orders entered in cases + units are read as units with it) and GST rate
-- (an invoice line's tax is checked against it). NULL: not known, as for every SKU registered before version 3.
ALTER TABLE known_skus ADD COLUMN units_per_case integer, ADD COLUMN gst_rate numeric;
