"""SQL over location_checks (projections/field_checks.py): geo-verified shares, off-site alerts, sync delays,
clock skew. Every query narrows rows by the caller's scope: `$rep` (a rep reads its own) and `$distributors` (a
territory's distributors; NULL for a national scope)."""

from datetime import datetime
from typing import Literal

import asyncpg

ShareBy = Literal["rep", "distributor", "region"]
DelayBy = Literal["rep", "device"]

_SHARES = """
SELECT CASE $1 WHEN 'rep' THEN c.rep_id WHEN 'distributor' THEN c.distributor_id ELSE g.region_id END AS key,
       count(*) AS captures,
       count(*) FILTER (WHERE c.verdict = 'on_site') AS on_site,
       count(*) FILTER (WHERE c.verdict = 'off_site') AS off_site,
       count(*) FILTER (WHERE c.verdict = 'low_accuracy') AS low_accuracy,
       count(*) FILTER (WHERE c.verdict = 'no_gps') AS no_gps,
       count(*) FILTER (WHERE c.verdict = 'outlet_not_geotagged') AS outlet_not_geotagged,
       count(*) FILTER (WHERE c.verdict = 'mock_location') AS mock_location
FROM location_checks c
LEFT JOIN distributor_geography g ON g.distributor_id = c.distributor_id
WHERE c.checked_at >= $2 AND ($3::text IS NULL OR c.subject_event_type = $3)
  AND ($4::text IS NULL OR c.rep_id = $4) AND ($5::text[] IS NULL OR c.distributor_id = ANY($5))
GROUP BY 1
ORDER BY 1 NULLS LAST
"""

_OFF_SITE_REPS = """
SELECT rep_id, count(*) FILTER (WHERE verdict = 'off_site') AS off_site_orders, count(*) AS orders,
       max(checked_at) FILTER (WHERE verdict = 'off_site') AS last_off_site_at
FROM location_checks
WHERE subject_event_type = 'OrderCaptured' AND checked_at >= $1
  AND ($2::text IS NULL OR rep_id = $2) AND ($3::text[] IS NULL OR distributor_id = ANY($3))
GROUP BY rep_id
HAVING count(*) FILTER (WHERE verdict = 'off_site') >= $4
ORDER BY off_site_orders DESC, rep_id
"""

_DELAYS = """
SELECT CASE $1 WHEN 'rep' THEN rep_id ELSE device END AS key, count(*) AS events,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY sync_delay_s) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY sync_delay_s) AS p95_s,
       max(sync_delay_s) AS max_s
FROM location_checks
WHERE checked_at >= $2 AND ($3::text IS NULL OR rep_id = $3) AND ($4::text[] IS NULL OR distributor_id = ANY($4))
GROUP BY 1
ORDER BY 1
"""

# One sample per batch a device posted (its orders and visits share the batch's skew and accept time).
_SKEW = """
WITH samples AS (
    SELECT DISTINCT ON (device, checked_at) device, rep_id, checked_at, device_clock_skew_s AS skew
    FROM location_checks
    WHERE device_clock_skew_s IS NOT NULL AND checked_at >= $1
      AND ($2::text IS NULL OR rep_id = $2) AND ($3::text[] IS NULL OR distributor_id = ANY($3))
    ORDER BY device, checked_at
)
SELECT device, (array_agg(rep_id ORDER BY checked_at DESC))[1] AS rep_id, count(*) AS batches,
       (array_agg(skew ORDER BY checked_at DESC))[1] AS latest_skew_s, max(abs(skew)) AS max_abs_skew_s,
       max(checked_at) AS last_seen_at
FROM samples
GROUP BY device
ORDER BY device
"""


async def verified_shares(
    conn: asyncpg.Connection,
    by: ShareBy,
    since: datetime,
    subject: str | None,
    rep: str | None,
    distributors: list[str] | None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SHARES, by, since, subject, rep, distributors))


async def off_site_reps(
    conn: asyncpg.Connection, since: datetime, rep: str | None, distributors: list[str] | None, threshold: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_OFF_SITE_REPS, since, rep, distributors, threshold))


async def sync_delays(
    conn: asyncpg.Connection, by: DelayBy, since: datetime, rep: str | None, distributors: list[str] | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_DELAYS, by, since, rep, distributors))


async def clock_skews(
    conn: asyncpg.Connection, since: datetime, rep: str | None, distributors: list[str] | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SKEW, since, rep, distributors))


# The first capture with good accuracy at each outlet that had no geotag when it was judged and has none from an
# admin since: what an admin confirms by posting OutletGeotagged.
_PROPOSALS = """
SELECT DISTINCT ON (c.outlet_id) c.outlet_id, c.distributor_id, c.subject_event_id, c.subject_event_type, c.rep_id,
       c.lat, c.lon, c.accuracy_m, c.checked_at
FROM location_checks c
WHERE c.verdict = 'outlet_not_geotagged' AND c.lat IS NOT NULL AND c.accuracy_m <= $1
  AND NOT EXISTS (SELECT 1 FROM outlet_geotags g WHERE g.outlet_id = c.outlet_id)
  AND ($2::text IS NULL OR c.rep_id = $2) AND ($3::text[] IS NULL OR c.distributor_id = ANY($3))
ORDER BY c.outlet_id, c.checked_at, c.subject_event_id
"""


async def geotag_proposals(
    conn: asyncpg.Connection, max_accuracy_m: float, rep: str | None, distributors: list[str] | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_PROPOSALS, max_accuracy_m, rep, distributors))
