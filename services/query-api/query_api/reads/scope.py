"""The dimension lookups behind the caller's scope (api/caller.py): a manager's subtree, an outlet's distributor,
the names of a scope's roots."""

from collections.abc import Iterable, Sequence

import asyncpg

# The subtree under a manager's geo ids, in one round trip: zones named, regions named or under a named zone,
# their distributors.
_SUBTREE = """
WITH r AS (SELECT region_id FROM regions WHERE region_id = ANY($1::text[]) OR zone_id = ANY($1::text[]))
SELECT ARRAY(SELECT zone_id FROM zones WHERE zone_id = ANY($1::text[])) AS zones,
       ARRAY(SELECT region_id FROM r) AS regions,
       ARRAY(SELECT distributor_id FROM distributors WHERE region_id IN (SELECT region_id FROM r)) AS distributors
"""
_OUTLET_DISTRIBUTOR = "SELECT distributor_id FROM outlets WHERE outlet_id = $1"
_NAMES = """
SELECT zone_id AS id, name FROM zones WHERE zone_id = ANY($1::text[])
UNION ALL SELECT region_id, name FROM regions WHERE region_id = ANY($1::text[])
UNION ALL SELECT distributor_id, name FROM distributors WHERE distributor_id = ANY($1::text[])
"""


async def subtree(
    conn: asyncpg.Connection, geo: Sequence[str]
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(zones, regions, distributors) under a manager's geo ids."""
    row = await conn.fetchrow(_SUBTREE, list(geo))
    zones, regions, distributors = (frozenset(row[k]) for k in ("zones", "regions", "distributors"))
    return zones, regions, distributors


async def outlet_distributor(conn: asyncpg.Connection, outlet_id: str) -> str | None:
    distributor: str | None = await conn.fetchval(_OUTLET_DISTRIBUTOR, outlet_id)
    return distributor


async def root_names(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, str]:
    return {r["id"]: r["name"] for r in await conn.fetch(_NAMES, sorted(set(ids)))}
