-- depends: 0023.alerts
-- Outlines of zones and regions from GeographyDefined (its optional `outline`): closed [lon, lat] rings as JSON,
-- drawn on the dashboard's outlet map. A row per area ever defined; outline NULL when the latest definition has none
-- (the map then draws the convex hull of the area's outlets). A later occurred_at wins, as for every dimension.
CREATE TABLE geo_outlines (
    geo_id      text PRIMARY KEY,
    level       text NOT NULL,
    outline     jsonb,
    occurred_at timestamptz NOT NULL
);
