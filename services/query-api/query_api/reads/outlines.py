"""Read queries of the map's region outlines: the regions in a map's scope with their defined outline
(geo_outlines, from GeographyDefined), and the outlet positions of those without one, for a convex hull.

Static SQL only; the scope is the map's (reads/map.py): `within` a zone, region, distributor or outlet, and the
caller's distributors (NULL: national)."""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from query_api.figures.convex_hull import Position

# $1 within, $2 the caller's distributors. The regions of every outlet in scope; for a national caller also each
# region under `within` (or every region), so an outline shows even where no outlet is registered yet.
_REGIONS = """
SELECT r.region_id AS id, r.name, x.outline
FROM regions r
LEFT JOIN geo_outlines x ON x.geo_id = r.region_id
WHERE r.region_id IN (
        SELECT g.region_id
        FROM outlets o
        JOIN distributor_geography g ON g.distributor_id = o.distributor_id
        WHERE ($1::text IS NULL OR $1 IN (g.zone_id, g.region_id, o.distributor_id, o.outlet_id))
          AND ($2::text[] IS NULL OR o.distributor_id = ANY($2)))
   OR ($2::text[] IS NULL AND ($1::text IS NULL OR $1 IN (r.zone_id, r.region_id)))
ORDER BY r.region_id
"""

# $1 regions, $2 the caller's distributors: every outlet position of those regions the caller may read (not only
# those under `within`), so a region's hull is the same at every drill level.
_POSITIONS = """
SELECT DISTINCT g.region_id, o.lon, o.lat
FROM outlets o
JOIN distributor_geography g ON g.distributor_id = o.distributor_id
WHERE g.region_id = ANY($1::text[]) AND ($2::text[] IS NULL OR o.distributor_id = ANY($2))
"""


@dataclass(frozen=True, slots=True)
class RegionRow:
    id: str
    name: str
    outline: list[list[Position]] | None


async def regions_in_scope(
    conn: asyncpg.Connection, within: str | None, distributors: list[str] | None
) -> list[RegionRow]:
    rows = await conn.fetch(_REGIONS, within, distributors)
    return [
        RegionRow(
            r["id"],
            r["name"],
            [[(lon, lat) for lon, lat in ring] for ring in r["outline"]] if r["outline"] else None,
        )
        for r in rows
    ]


async def outlet_positions(
    conn: asyncpg.Connection, regions: Sequence[str], distributors: list[str] | None
) -> dict[str, list[Position]]:
    positions: dict[str, list[Position]] = {}
    if not regions:
        return positions
    for r in await conn.fetch(_POSITIONS, list(regions), distributors):
        positions.setdefault(r["region_id"], []).append((r["lon"], r["lat"]))
    return positions
