-- depends: 0019.outlet-monthly
-- Issue 19: a distributor's invoices to retailers (RetailerInvoiced, from its DMS or a Tally export) as a second
-- source of secondary sales (projections/retailer_invoices.py). The first event of a (distributor, invoice number)
-- wins. An invoice naming an order is that order's delivery (sales_deliveries, delivery_id = invoice number); one
-- without an order appends its own sales_lines rows, kind 'dms', document_id = invoice number.
CREATE TABLE retailer_invoices (
    distributor_id  text           NOT NULL,
    invoice_number  text           NOT NULL,
    event_id        uuid           NOT NULL,
    outlet_id       text           NOT NULL,
    order_id        text,                      -- the order it delivers; NULL: a sale without a rep's order
    day             date           NOT NULL,   -- invoice_date: the business day its sales count on
    occurred_at     timestamptz    NOT NULL,
    recorded_at     timestamptz,
    source          text           NOT NULL,
    actor           text           NOT NULL,
    currency        text           NOT NULL,
    PRIMARY KEY (distributor_id, invoice_number)
);
-- An order's invoices (matching), and the day range of sales without an order (provenance).
CREATE INDEX retailer_invoices_by_order ON retailer_invoices (distributor_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX retailer_invoices_by_day ON retailer_invoices (day) WHERE order_id IS NULL;

-- Per SKU (a SKU billed on two lines is summed): what the invoice says, tax split kept when the export had it.
CREATE TABLE retailer_invoice_lines (
    distributor_id  text           NOT NULL,
    invoice_number  text           NOT NULL,
    sku_id          text           NOT NULL,
    units           bigint         NOT NULL,
    value           numeric(18, 4) NOT NULL,
    taxable_value   numeric(18, 4),
    tax             numeric(18, 4),
    lines           integer        NOT NULL,
    PRIMARY KEY (distributor_id, invoice_number, sku_id)
);
