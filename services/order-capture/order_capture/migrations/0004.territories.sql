-- depends: 0003.business-keys
-- Territories (order_capture/territory.py): a rep writes only at outlets of its distributors, narrowed to its
-- beats when it has any; a cancellation or delivery only for an order of its own rep or bound distributor.

-- Every distributor a rep covers (RepRegistered v2: distributor_id and also_covers_distributor_ids), and its
-- beats (empty: every beat of those distributors). A version 1 rep covered its one distributor.
ALTER TABLE known_reps ADD COLUMN distributor_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE known_reps ADD COLUMN beat_ids text[] NOT NULL DEFAULT '{}';
UPDATE known_reps SET distributor_ids = ARRAY[distributor_id];
ALTER TABLE known_reps ALTER COLUMN distributor_ids DROP DEFAULT;

-- The beat of each outlet. Outlets known before were built from the reference topic without it; every
-- reference event was accepted here first, so the outbox (which keeps them) gives it back.
ALTER TABLE known_outlets ADD COLUMN beat_id text;
UPDATE known_outlets o SET beat_id = latest.beat_id
FROM (
    SELECT DISTINCT ON (document -> 'payload' ->> 'outlet_id') document -> 'payload' ->> 'outlet_id' AS outlet_id,
           document -> 'payload' ->> 'beat_id' AS beat_id, (document ->> 'occurred_at')::timestamptz AS occurred_at
    FROM (
        SELECT seq, convert_from(value, 'UTF8')::jsonb AS document FROM outbox WHERE event_type = 'OutletRegistered'
    ) AS outlets
    ORDER BY document -> 'payload' ->> 'outlet_id', (document ->> 'occurred_at')::timestamptz DESC, seq DESC
) AS latest
WHERE latest.outlet_id = o.outlet_id AND latest.occurred_at = o.occurred_at;

-- Who captured each accepted order: a cancellation or delivery is checked against it. Written in the same
-- transaction as the order's idempotency record; the first accepted order of an id wins.
CREATE TABLE order_owners (
    distributor_id text NOT NULL,
    order_id       text NOT NULL,
    rep_id         text NOT NULL,
    PRIMARY KEY (distributor_id, order_id)
);

-- Orders accepted before this table existed, from the outbox (which keeps every accepted event).
INSERT INTO order_owners (distributor_id, order_id, rep_id)
SELECT DISTINCT ON (1, 2) document -> 'payload' ->> 'distributor_id', document -> 'payload' ->> 'order_id',
       document -> 'payload' ->> 'rep_id'
FROM (
    SELECT seq, convert_from(value, 'UTF8')::jsonb AS document FROM outbox WHERE event_type = 'OrderCaptured'
) AS orders
ORDER BY 1, 2, seq;
