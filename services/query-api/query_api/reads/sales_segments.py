"""The drill-down narrowed to outlets of some channels or classes (GET /v1/sales with `channel`, `outlet_class`).

The rollups reads/sales.py prefers are per distributor or outlet with no channel in them, so a narrowed drill reads
the order-line fact table (sales_lines) joined to the outlet dimension, which carries each outlet's channel and
class from OutletRegistered: no column or rollup is added for it. Otherwise the statement is reads/sales.py's
_DRILL_SQL, rows grouped and totalled the same way, so the rows of every channel add up to the unfiltered rows
(less the sales of outlets reference data has not described, which have no channel).
"""

from decimal import Decimal

import asyncpg

from query_api.figures.measures import MEASURES, NAMES, column_list, sums
from query_api.reads.sales import DrillQuery, DrillResult, DrillRow, Figures
from query_api.reads.segment import Segment

_TOTALS = ", ".join(f"sum(sum({name})) OVER () AS total_{name}" for name in NAMES)

# $1..$8 as reads/sales.py's statements; $9 channels, $10 outlet classes (null: any).
_SEGMENT_DRILL_SQL = f"""
WITH filtered AS (
    SELECT {column_list("s.")},
           s.outlet_id, o.name AS outlet_name,
           o.distributor_id, d.name AS distributor_name,
           d.region_id, r.name AS region_name,
           r.zone_id, z.name AS zone_name
    FROM sales_lines s
    JOIN outlets o ON o.outlet_id = s.outlet_id
    LEFT JOIN distributors d ON d.distributor_id = o.distributor_id
    LEFT JOIN regions r ON r.region_id = d.region_id
    LEFT JOIN zones z ON z.zone_id = r.zone_id
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $2 AND $3
      AND ($5::text IS NULL OR k.brand = $5)
      AND ($6::text IS NULL OR s.sku_id = $6)
      AND ($8::text[] IS NULL OR o.distributor_id = ANY($8))
      AND ($9::text[] IS NULL OR o.channel = ANY($9))
      AND ($10::text[] IS NULL OR o.outlet_class = ANY($10))
), placed AS (
    SELECT CASE $1 WHEN 'national' THEN 'national' WHEN 'zone' THEN zone_id WHEN 'region' THEN region_id
                   WHEN 'distributor' THEN distributor_id ELSE outlet_id END AS node_id,
           CASE $1 WHEN 'national' THEN 'National' WHEN 'zone' THEN zone_name WHEN 'region' THEN region_name
                   WHEN 'distributor' THEN distributor_name ELSE outlet_name END AS node_name,
           CASE $1 WHEN 'region' THEN zone_id WHEN 'distributor' THEN region_id
                   WHEN 'outlet' THEN distributor_id END AS parent_id,
           {column_list()}
    FROM filtered
)
SELECT node_id, max(node_name) AS name, {sums()}, {_TOTALS}, count(*) OVER () AS row_count
FROM placed
WHERE $4::text IS NULL OR parent_id = $4
GROUP BY node_id
ORDER BY sum(value) DESC, node_id NULLS LAST
LIMIT $7
"""  # noqa: S608 (names from figures.measures, fixed at import)


async def segment_drill(conn: asyncpg.Connection, query: DrillQuery, segment: Segment) -> DrillResult:
    records = await conn.fetch(
        _SEGMENT_DRILL_SQL,
        query.level.value,
        query.date_from,
        query.date_to,
        query.parent_id,
        query.brand,
        query.sku_id,
        query.limit,
        query.distributors,
        segment.channels,
        segment.outlet_classes,
    )
    rows = [DrillRow(r["node_id"], r["name"], _figures(r)) for r in records]
    first = records[0] if records else None
    return DrillResult(rows, _figures(first, "total_"), int(first["row_count"]) if first else 0)


def _figures(record: asyncpg.Record | None, prefix: str = "") -> Figures:
    return {
        m.name: (Decimal if m.sql_type == "numeric" else int)(record[prefix + m.name] if record else 0)
        for m in MEASURES
    }
