"""Drill-down over the daily sales projection: national -> zone -> region -> distributor -> outlet.

One fixed SQL statement serves every level (no SQL is assembled from input). Sales whose outlet (or its
distributor, region, zone) is not yet known from reference data are grouped under a null id rather than
dropped, so the rows always add up to the national total.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

import asyncpg


class Level(StrEnum):
    NATIONAL = "national"
    ZONE = "zone"
    REGION = "region"
    DISTRIBUTOR = "distributor"
    OUTLET = "outlet"


PARENT_LEVEL: dict[Level, Level] = {
    Level.ZONE: Level.NATIONAL,
    Level.REGION: Level.ZONE,
    Level.DISTRIBUTOR: Level.REGION,
    Level.OUTLET: Level.DISTRIBUTOR,
}

_DRILL_SQL = """
WITH filtered AS (
    SELECT s.value, s.units, s.lines,
           s.outlet_id, o.name AS outlet_name,
           o.distributor_id, d.name AS distributor_name,
           d.region_id, r.name AS region_name,
           r.zone_id, z.name AS zone_name
    FROM sales_daily s
    LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
    LEFT JOIN distributors d ON d.distributor_id = o.distributor_id
    LEFT JOIN regions r ON r.region_id = d.region_id
    LEFT JOIN zones z ON z.zone_id = r.zone_id
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $2 AND $3
      AND ($5::text IS NULL OR k.brand = $5)
      AND ($6::text IS NULL OR s.sku_id = $6)
), placed AS (
    SELECT CASE $1 WHEN 'national' THEN 'national' WHEN 'zone' THEN zone_id WHEN 'region' THEN region_id
                   WHEN 'distributor' THEN distributor_id ELSE outlet_id END AS node_id,
           CASE $1 WHEN 'national' THEN 'National' WHEN 'zone' THEN zone_name WHEN 'region' THEN region_name
                   WHEN 'distributor' THEN distributor_name ELSE outlet_name END AS node_name,
           CASE $1 WHEN 'region' THEN zone_id WHEN 'distributor' THEN region_id
                   WHEN 'outlet' THEN distributor_id END AS parent_id,
           value, units, lines
    FROM filtered
)
SELECT node_id, max(node_name) AS name, sum(value) AS value, sum(units) AS units, sum(lines) AS lines,
       sum(sum(value)) OVER () AS total_value, sum(sum(units)) OVER () AS total_units,
       sum(sum(lines)) OVER () AS total_lines, count(*) OVER () AS row_count
FROM placed
WHERE $4::text IS NULL OR parent_id = $4
GROUP BY node_id
ORDER BY sum(value) DESC, node_id NULLS LAST
LIMIT $7
"""

_PARENT_EXISTS_SQL = """
SELECT CASE $1
    WHEN 'zone' THEN EXISTS (SELECT 1 FROM zones WHERE zone_id = $2)
    WHEN 'region' THEN EXISTS (SELECT 1 FROM regions WHERE region_id = $2)
    WHEN 'distributor' THEN EXISTS (SELECT 1 FROM distributors WHERE distributor_id = $2)
    ELSE false END
"""


@dataclass(frozen=True)
class DrillRow:
    id: str | None
    name: str | None
    value: Decimal
    units: int
    lines: int


@dataclass(frozen=True)
class DrillResult:
    rows: list[DrillRow]
    total_value: Decimal
    total_units: int
    total_lines: int
    row_count: int


@dataclass(frozen=True)
class DrillQuery:
    level: Level
    parent_id: str | None
    date_from: date
    date_to: date
    brand: str | None = None
    sku_id: str | None = None
    limit: int = 500


async def parent_exists(conn: asyncpg.Connection, level: Level, parent_id: str) -> bool:
    return bool(await conn.fetchval(_PARENT_EXISTS_SQL, PARENT_LEVEL[level].value, parent_id))


async def drill(conn: asyncpg.Connection, query: DrillQuery) -> DrillResult:
    records = await conn.fetch(
        _DRILL_SQL,
        query.level.value,
        query.date_from,
        query.date_to,
        query.parent_id,
        query.brand,
        query.sku_id,
        query.limit,
    )
    rows = [DrillRow(r["node_id"], r["name"], r["value"], int(r["units"]), int(r["lines"])) for r in records]
    if not records:
        return DrillResult(rows, Decimal(0), 0, 0, 0)
    first = records[0]
    return DrillResult(
        rows, first["total_value"], int(first["total_units"]), int(first["total_lines"]), int(first["row_count"])
    )
