-- depends: 0021.retailer-invoices
-- Issue 19, formats: what SkuRegistered version 3 adds. units_per_case splits SKU quantities into cases + units in
-- the reads; hsn_code and gst_rate are shown with the SKU. NULL: not known (SKUs registered before version 3).
-- currency: of list_price; the books are single-currency, so it is the brand's (SELLTHROUGH_CURRENCY).
ALTER TABLE skus
    ADD COLUMN units_per_case integer CHECK (units_per_case >= 1),
    ADD COLUMN hsn_code text,
    ADD COLUMN gst_rate numeric(5, 2),
    ADD COLUMN currency text;
