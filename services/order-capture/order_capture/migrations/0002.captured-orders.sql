-- One row per (distributor, order id) accepted: an order is counted once, whatever event_id it comes under.
-- Written in the same transaction as the idempotency record, so concurrent requests serialise on this key.
CREATE TABLE captured_orders (
    distributor_id text  NOT NULL,
    order_id       text  NOT NULL,
    event_id       uuid  NOT NULL,
    -- Fingerprint of the event without its event_id: the same order posted again under a new event_id is a
    -- duplicate, anything else under the same order id is refused. NULL for orders accepted before this
    -- table existed (no fingerprint without the event_id was kept): any other event for them is refused.
    order_hash     bytea,
    PRIMARY KEY (distributor_id, order_id)
);

-- Orders already accepted, from the outbox (which keeps every accepted event); the first accepted wins.
INSERT INTO captured_orders (distributor_id, order_id, event_id)
SELECT DISTINCT ON (1, 2) document -> 'payload' ->> 'distributor_id', document -> 'payload' ->> 'order_id', event_id
FROM (
    SELECT seq, event_id, convert_from(value, 'UTF8')::jsonb AS document FROM outbox WHERE event_type = 'OrderCaptured'
) AS orders
ORDER BY 1, 2, seq;
