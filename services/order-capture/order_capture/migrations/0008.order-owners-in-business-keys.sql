-- depends: 0007.sku-formats
-- An accepted order's rep (the ownership rule on its cancellation or delivery, territory.py) is kept on its
-- business key instead of in a table of its own: both are written once per accepted order, in the same
-- transaction, first accepted wins in both; now one INSERT and one primary-key index less per accepted batch.
-- NULL for every other event type.
ALTER TABLE business_keys ADD COLUMN rep_id text;
UPDATE business_keys b SET rep_id = o.rep_id
FROM order_owners o
WHERE b.event_type = 'OrderCaptured' AND b.distributor_id = o.distributor_id AND b.business_id = o.order_id;
-- An owner without a key: an order stored by a release that kept neither, which 0004 found in the outbox after
-- 0003 had looked. Its key is made here, with the event that 0004 found (the first in the outbox), or the nil id if
-- retention has pruned it since; without a fingerprint, as 0003 made keys: another event_id for it is refused.
INSERT INTO business_keys (event_type, distributor_id, business_id, event_id, rep_id)
SELECT 'OrderCaptured', o.distributor_id, o.order_id,
       coalesce(
           (SELECT x.event_id FROM outbox x
            WHERE x.event_type = 'OrderCaptured'
              AND convert_from(x.value, 'UTF8')::jsonb -> 'payload' ->> 'distributor_id' = o.distributor_id
              AND convert_from(x.value, 'UTF8')::jsonb -> 'payload' ->> 'order_id' = o.order_id
            ORDER BY x.seq LIMIT 1),
           '00000000-0000-0000-0000-000000000000'::uuid),
       o.rep_id
FROM order_owners o
WHERE NOT EXISTS (
    SELECT 1 FROM business_keys b
    WHERE b.event_type = 'OrderCaptured' AND b.distributor_id = o.distributor_id AND b.business_id = o.order_id
);
DROP TABLE order_owners;
