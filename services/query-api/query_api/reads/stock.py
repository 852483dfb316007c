"""Read queries over the stock, alert and primary projections. Static SQL; geography joined at read time."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import asyncpg


class StockLevel(StrEnum):
    NATIONAL = "national"
    ZONE = "zone"
    REGION = "region"
    DISTRIBUTOR = "distributor"
    SKU = "sku"


STOCK_PARENT: dict[StockLevel, str] = {
    StockLevel.REGION: "zone",
    StockLevel.DISTRIBUTOR: "region",
    StockLevel.SKU: "distributor",
}

# Every query places distributor-level rows (x) on the requested level ($1) with the stock_node() SQL function
# (migration 0003): national, zone, region or distributor from its geography, or per SKU under a distributor.

# Stock is valued here, at the SKU's current list price, not with the value in the ledger's events: those
# carry the price the ledger knew when it emitted them, which depends on whether the SKU's reference event
# had arrived yet (another topic); valuing at read time is the same whatever the arrival order. Values stay numeric
# (exact) all the way to the response: summed as floats, 7,600,631.99 came out as 7600631.990000007.
_STOCK_SQL = """
WITH placed AS (
    SELECT x.on_hand, x.on_hand * coalesce(k.list_price, 0) AS value,
           latest.variance_units, latest.variance_units * coalesce(k.list_price, 0) AS variance_value,
           n.node_id, n.node_name, n.parent_id, k.units_per_case
    FROM stock_positions x
    LEFT JOIN distributor_geography g ON g.distributor_id = x.distributor_id
    LEFT JOIN skus k ON k.sku_id = x.sku_id
    CROSS JOIN LATERAL stock_node($1, x.distributor_id, x.sku_id, k.name, g) n
    LEFT JOIN LATERAL (
        SELECT v.variance_units FROM stock_variances v
        WHERE v.distributor_id = x.distributor_id AND v.sku_id = x.sku_id
        ORDER BY v.counted_at DESC, v.count_id DESC LIMIT 1
    ) latest ON true
    WHERE ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR x.sku_id = $4)
      AND ($6::text[] IS NULL OR x.distributor_id = ANY($6))
)
SELECT node_id, max(node_name) AS name, sum(on_hand) AS on_hand, sum(value) AS value, count(*) AS positions,
       CASE WHEN $1 = 'sku' THEN max(units_per_case) END AS units_per_case,
       count(*) FILTER (WHERE on_hand < 0) AS negative_positions,
       coalesce(sum(variance_units), 0) AS variance_units, coalesce(sum(variance_value), 0) AS variance_value,
       sum(sum(on_hand)) OVER () AS total_on_hand, sum(sum(value)) OVER () AS total_value,
       count(*) OVER () AS row_count
FROM placed WHERE $2::text IS NULL OR parent_id = $2
GROUP BY node_id ORDER BY sum(value) DESC, node_id NULLS LAST LIMIT $5
"""

_ALERT_COUNTS_SQL = """
WITH placed AS (
    SELECT x.kind,
           n.node_id, n.node_name, n.parent_id
    FROM stock_alerts x
    LEFT JOIN distributor_geography g ON g.distributor_id = x.distributor_id
    LEFT JOIN skus k ON k.sku_id = x.sku_id
    CROSS JOIN LATERAL stock_node($1, x.distributor_id, x.sku_id, k.name, g) n
    WHERE x.status = 'raised' AND ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR x.sku_id = $4)
      AND ($5::text IS NULL OR x.kind = $5) AND ($7::text[] IS NULL OR x.distributor_id = ANY($7))
)
SELECT node_id, max(node_name) AS name, count(*) AS alerts,
       count(*) FILTER (WHERE kind = 'negative_stock') AS negative_stock,
       count(*) FILTER (WHERE kind = 'stockout_risk') AS stockout_risk,
       count(*) FILTER (WHERE kind = 'overstock') AS overstock
FROM placed WHERE $2::text IS NULL OR parent_id = $2
GROUP BY node_id ORDER BY count(*) DESC, node_id NULLS LAST LIMIT $6
"""

# The individual raised alerts under the requested parent (or everywhere), most urgent first; `total` counts
# every one of them, however few the limit lets through (the window runs before LIMIT).
_ALERT_LIST_SQL = """
WITH placed AS (
    SELECT x.*, g.distributor_name, k.name AS sku_name, k.units_per_case,
           n.node_id, n.node_name, n.parent_id
    FROM stock_alerts x
    LEFT JOIN distributor_geography g ON g.distributor_id = x.distributor_id
    LEFT JOIN skus k ON k.sku_id = x.sku_id
    CROSS JOIN LATERAL stock_node($1, x.distributor_id, x.sku_id, k.name, g) n
    WHERE x.status = 'raised' AND ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR x.sku_id = $4)
      AND ($5::text IS NULL OR x.kind = $5) AND ($7::text[] IS NULL OR x.distributor_id = ANY($7))
)
SELECT distributor_id, distributor_name, sku_id, sku_name, kind, on_hand, avg_daily_sales, days_of_cover,
       threshold_days, changed_at, units_per_case, count(*) OVER () AS total
FROM placed WHERE $2::text IS NULL OR parent_id = $2
ORDER BY CASE kind WHEN 'negative_stock' THEN 0 WHEN 'stockout_risk' THEN 1 ELSE 2 END, days_of_cover NULLS LAST,
         distributor_id, sku_id
LIMIT $6
"""

# Secondary sales are attributed to the distributor serving the outlet; sales of outlets not yet known are
# left out here (they appear as Unassigned in /v1/sales).
_PRIMARY_VS_SECONDARY_SQL = """
WITH movements AS (
    SELECT p.distributor_id, p.sku_id, p.value AS primary_value, p.units AS primary_units,
           0::numeric AS secondary_value, 0::bigint AS secondary_units
    FROM primary_daily p WHERE p.day BETWEEN $6 AND $7
    UNION ALL
    SELECT o.distributor_id, s.sku_id, 0::numeric, 0::bigint, s.value, s.units
    FROM sales_lines s JOIN outlets o ON o.outlet_id = s.outlet_id WHERE s.day BETWEEN $6 AND $7
), placed AS (
    SELECT x.primary_value, x.primary_units, x.secondary_value, x.secondary_units,
           n.node_id, n.node_name, n.parent_id
    FROM movements x
    LEFT JOIN distributor_geography g ON g.distributor_id = x.distributor_id
    LEFT JOIN skus k ON k.sku_id = x.sku_id
    CROSS JOIN LATERAL stock_node($1, x.distributor_id, x.sku_id, k.name, g) n
    WHERE ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR x.sku_id = $4)
      AND ($8::text[] IS NULL OR x.distributor_id = ANY($8))
)
SELECT node_id, max(node_name) AS name, sum(primary_value) AS primary_value, sum(primary_units) AS primary_units,
       sum(secondary_value) AS secondary_value, sum(secondary_units) AS secondary_units
FROM placed WHERE $2::text IS NULL OR parent_id = $2
GROUP BY node_id ORDER BY sum(primary_value) DESC, node_id NULLS LAST LIMIT $5
"""


@dataclass(frozen=True)
class StockFilter:
    level: StockLevel
    parent_id: str | None
    brand: str | None
    sku_id: str | None
    limit: int
    distributors: list[str] | None = None
    """The caller's scope (api/caller.py): only these distributors' positions; None: national."""


async def stock_rows(conn: asyncpg.Connection, f: StockFilter) -> list[asyncpg.Record]:
    return list(await conn.fetch(_STOCK_SQL, f.level.value, f.parent_id, f.brand, f.sku_id, f.limit, f.distributors))


async def alert_counts(conn: asyncpg.Connection, f: StockFilter, kind: str | None) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _ALERT_COUNTS_SQL, f.level.value, f.parent_id, f.brand, f.sku_id, kind, f.limit, f.distributors
        )
    )


async def alert_list(conn: asyncpg.Connection, f: StockFilter, kind: str | None, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(_ALERT_LIST_SQL, f.level.value, f.parent_id, f.brand, f.sku_id, kind, limit, f.distributors)
    )


async def primary_vs_secondary(
    conn: asyncpg.Connection, f: StockFilter, date_from: date, date_to: date
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _PRIMARY_VS_SECONDARY_SQL,
        f.level.value,
        f.parent_id,
        f.brand,
        f.sku_id,
        f.limit,
        date_from,
        date_to,
        f.distributors,
    )
    result = []
    for r in rows:
        primary_units, secondary_units = int(r["primary_units"]), int(r["secondary_units"])
        result.append(
            {
                "id": r["node_id"],
                "name": r["name"],
                "primary_value": Decimal(r["primary_value"]),
                "primary_units": primary_units,
                "secondary_value": Decimal(r["secondary_value"]),
                "secondary_units": secondary_units,
                "stock_build_units": primary_units - secondary_units,
                "sell_in_per_sell_out": round(primary_units / secondary_units, 3) if secondary_units else None,
            }
        )
    return result


async def parent_known(conn: asyncpg.Connection, level: StockLevel, parent_id: str) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT CASE $1 WHEN 'zone' THEN EXISTS (SELECT 1 FROM zones WHERE zone_id = $2)
                          WHEN 'region' THEN EXISTS (SELECT 1 FROM regions WHERE region_id = $2)
                          WHEN 'distributor' THEN EXISTS (SELECT 1 FROM distributors WHERE distributor_id = $2)
                          ELSE false END""",
            STOCK_PARENT[level],
            parent_id,
        )
    )
