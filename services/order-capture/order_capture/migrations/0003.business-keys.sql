-- depends: 0002.captured-orders
-- Every fact with a business id is counted once, not only orders: deliveries, returns, counts, adjustments,
-- invoices and cancellations (order_capture/business_keys.py). captured_orders becomes business_keys, keyed by
-- the event type too.
ALTER TABLE captured_orders RENAME TO business_keys;
ALTER TABLE business_keys RENAME COLUMN order_id TO business_id;
ALTER TABLE business_keys RENAME COLUMN order_hash TO body_hash;
ALTER TABLE business_keys ADD COLUMN event_type text NOT NULL DEFAULT 'OrderCaptured';
ALTER TABLE business_keys ALTER COLUMN event_type DROP DEFAULT;
ALTER TABLE business_keys DROP CONSTRAINT captured_orders_pkey;
ALTER TABLE business_keys ADD PRIMARY KEY (event_type, distributor_id, business_id);

-- Facts already accepted, from the outbox (which keeps every accepted event); the first accepted wins. Without a
-- fingerprint, another event_id for them is refused.
INSERT INTO business_keys (event_type, distributor_id, business_id, event_id)
SELECT DISTINCT ON (1, 2, 3) event_type, document -> 'payload' ->> 'distributor_id',
       document -> 'payload' ->> CASE event_type
           WHEN 'OrderCancelled' THEN 'order_id'
           WHEN 'OrderDelivered' THEN 'delivery_id'
           WHEN 'ReturnRecorded' THEN 'return_id'
           WHEN 'PrimaryInvoiced' THEN 'invoice_number'
           WHEN 'StockCounted' THEN 'count_id'
           WHEN 'StockAdjusted' THEN 'adjustment_id'
       END,
       event_id
FROM (
    SELECT seq, event_id, event_type, convert_from(value, 'UTF8')::jsonb AS document FROM outbox
    WHERE event_type IN ('OrderCancelled', 'OrderDelivered', 'ReturnRecorded', 'PrimaryInvoiced', 'StockCounted',
                         'StockAdjusted')
) AS facts
ORDER BY 1, 2, 3, seq
ON CONFLICT DO NOTHING;
