-- depends: 0004.territories
-- Field verification (order_capture/geo.py): each order and visit is judged against its outlet's geotag and
-- the radius of its channel.

-- The master data's location and channel of each outlet (OutletRegistered), and the geotag an admin set or
-- confirmed (OutletGeotagged), which wins over the master data's location once there is one.
ALTER TABLE known_outlets ADD COLUMN channel text;
ALTER TABLE known_outlets ADD COLUMN lat double precision;
ALTER TABLE known_outlets ADD COLUMN lon double precision;

-- Outlets known before were built without them; every reference event was accepted here first, so the outbox
-- (which keeps them) gives them back.
UPDATE known_outlets o SET channel = latest.channel, lat = latest.lat, lon = latest.lon
FROM (
    SELECT DISTINCT ON (document -> 'payload' ->> 'outlet_id') document -> 'payload' ->> 'outlet_id' AS outlet_id,
           document -> 'payload' ->> 'channel' AS channel,
           (document -> 'payload' -> 'location' ->> 'lat')::double precision AS lat,
           (document -> 'payload' -> 'location' ->> 'lon')::double precision AS lon,
           (document ->> 'occurred_at')::timestamptz AS occurred_at
    FROM (
        SELECT seq, convert_from(value, 'UTF8')::jsonb AS document FROM outbox WHERE event_type = 'OutletRegistered'
    ) AS outlets
    ORDER BY document -> 'payload' ->> 'outlet_id', (document ->> 'occurred_at')::timestamptz DESC, seq DESC
) AS latest
WHERE latest.outlet_id = o.outlet_id AND latest.occurred_at = o.occurred_at;

-- The latest admin geotag of each outlet, kept apart from known_outlets: reference events arrive in any order,
-- so a geotag may come before its outlet's registration.
CREATE TABLE outlet_geotags (
    outlet_id   text PRIMARY KEY,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    occurred_at timestamptz NOT NULL
);
