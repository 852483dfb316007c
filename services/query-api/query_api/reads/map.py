"""Read query of the outlet map: every known outlet with its coordinates and its secondary sales over a range.

Static SQL only. Values come from sales_lines, the projection behind /v1/sales, so an outlet's value here equals
its row of /v1/sales?level=outlet for the same range and filters. Outlets that sold nothing are kept with zero
(dormant outlets matter on a map); sales of outlets not yet in reference data have no coordinates and are left out.
"""

from collections.abc import AsyncIterator
from datetime import date

import asyncpg

# $1 from, $2 to, $3 brand, $4 sku, $5 within (zone, region, distributor or outlet id), $6 limit, $7 the caller's
# distributors (api/caller.py; null: national).
# The window aggregates (count, bounding box, largest value) are over every outlet in scope, before LIMIT.
_MAP_SQL = """
WITH sold AS (
    SELECT s.outlet_id, sum(s.value) AS value, sum(s.units) AS units
    FROM sales_lines s
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $1 AND $2
      AND ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR s.sku_id = $4)
    GROUP BY s.outlet_id
)
SELECT o.outlet_id AS id, o.name, o.distributor_id, o.lat, o.lon,
       coalesce(x.value, 0) AS value, coalesce(x.units, 0) AS units,
       count(*) OVER () AS total_outlets,
       min(o.lat) OVER () AS min_lat, max(o.lat) OVER () AS max_lat,
       min(o.lon) OVER () AS min_lon, max(o.lon) OVER () AS max_lon,
       max(coalesce(x.value, 0)) OVER () AS max_value
FROM outlets o
LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
LEFT JOIN sold x ON x.outlet_id = o.outlet_id
WHERE ($5::text IS NULL OR $5 IN (g.zone_id, g.region_id, o.distributor_id, o.outlet_id))
  AND ($7::text[] IS NULL OR o.distributor_id = ANY($7))
ORDER BY coalesce(x.value, 0) DESC, o.outlet_id
LIMIT $6
"""


async def outlet_map(
    conn: asyncpg.Connection,
    date_from: date,
    date_to: date,
    brand: str | None,
    sku_id: str | None,
    within: str | None,
    limit: int,
    distributors: list[str] | None = None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_MAP_SQL, date_from, date_to, brand, sku_id, within, limit, distributors))


async def outlet_map_batches(
    pool: asyncpg.Pool, args: tuple[object, ...], batch: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """The outlets of outlet_map's arguments (a limit of None: all of them), `batch` at a time from a server-side
    cursor on a connection of its own: an export of a brand's whole outlet list is never whole in memory."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(_MAP_SQL, *args)
        while records := await cursor.fetch(batch):
            yield records
