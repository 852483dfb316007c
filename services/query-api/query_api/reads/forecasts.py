"""Reads for forecasts and anomalies: daily net secondary units per distributor x SKU, stock on hand, names.
Net of cancellations and retailer returns, as every figure; a day whose returns exceed its sales is a day without
demand (0), not negative demand.
Static SQL. Secondary sales belong to the distributor serving the outlet now (outlets joined at read time,
as everywhere); sales of outlets not yet known cannot be placed and are left out."""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg

from query_api.reads.stock import StockLevel

_DISTRIBUTOR_UNITS_SQL = """
SELECT o.distributor_id, s.sku_id, s.day, greatest(sum(s.units), 0)::bigint AS units
FROM sales_lines s JOIN outlets o ON o.outlet_id = s.outlet_id
WHERE o.distributor_id = $1 AND ($2::text IS NULL OR s.sku_id = $2) AND s.day BETWEEN $3 AND $4
GROUP BY o.distributor_id, s.sku_id, s.day
ORDER BY s.sku_id, s.day
"""

# Distributor x SKU series under a parent, placed with stock_node() (migration 0003) like /v1/stock: `level`
# and `parent_id` mean what they mean there, and node_id is the row's node at that level.
_SCOPED_UNITS_SQL = """
SELECT o.distributor_id, s.sku_id, s.day, greatest(sum(s.units), 0)::bigint AS units, n.node_id
FROM sales_lines s
JOIN outlets o ON o.outlet_id = s.outlet_id
LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
LEFT JOIN skus k ON k.sku_id = s.sku_id
CROSS JOIN LATERAL stock_node($1, o.distributor_id, s.sku_id, k.name, g) n
WHERE ($2::text IS NULL OR n.parent_id = $2) AND ($3::text IS NULL OR s.sku_id = $3) AND s.day BETWEEN $4 AND $5
GROUP BY o.distributor_id, s.sku_id, s.day, n.node_id
ORDER BY o.distributor_id, s.sku_id, s.day
"""

_ON_HAND_SQL = """
SELECT sku_id, on_hand FROM stock_positions WHERE distributor_id = $1 AND ($2::text IS NULL OR sku_id = $2)
"""

_DISTRIBUTOR_NAME_SQL = "SELECT name FROM distributors WHERE distributor_id = $1"
_SKU_NAMES_SQL = "SELECT sku_id, name FROM skus WHERE sku_id = ANY($1::text[])"
_DISTRIBUTOR_NAMES_SQL = "SELECT distributor_id, name FROM distributors WHERE distributor_id = ANY($1::text[])"

Key = tuple[str, str]  # (distributor_id, sku_id)


@dataclass(frozen=True)
class Series:
    """Daily units from the first day with sales in the window to the last day, zero-filled."""

    first_day: date
    units: list[int]
    node_id: str | None = None

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)


def dense_series(rows: Iterable[Mapping[str, Any]], last_day: date) -> dict[Key, Series]:
    """One series per (distributor, SKU). It starts at the first day with sales, not at the window's start:
    a SKU listed three weeks ago has no demand history before that, rather than weeks of zero demand."""
    days: dict[Key, dict[date, int]] = defaultdict(dict)
    nodes: dict[Key, str | None] = {}
    for r in rows:
        key = (r["distributor_id"], r["sku_id"])
        days[key][r["day"]] = int(r["units"])
        nodes[key] = r.get("node_id")
    result = {}
    for key, by_day in days.items():
        first = min(by_day)
        length = (last_day - first).days + 1
        units = [by_day.get(first + timedelta(days=i), 0) for i in range(length)]
        result[key] = Series(first, units, nodes[key])
    return result


async def distributor_units(
    conn: asyncpg.Connection, distributor_id: str, sku_id: str | None, first: date, last: date
) -> dict[Key, Series]:
    return dense_series(await conn.fetch(_DISTRIBUTOR_UNITS_SQL, distributor_id, sku_id, first, last), last)


async def scoped_units(
    conn: asyncpg.Connection, level: StockLevel, parent_id: str | None, sku_id: str | None, first: date, last: date
) -> dict[Key, Series]:
    rows = await conn.fetch(_SCOPED_UNITS_SQL, level.value, parent_id, sku_id, first, last)
    return dense_series(rows, last)


async def on_hand(conn: asyncpg.Connection, distributor_id: str, sku_id: str | None) -> dict[str, int]:
    return {r["sku_id"]: int(r["on_hand"]) for r in await conn.fetch(_ON_HAND_SQL, distributor_id, sku_id)}


async def distributor_name(conn: asyncpg.Connection, distributor_id: str) -> str | None:
    name = await conn.fetchval(_DISTRIBUTOR_NAME_SQL, distributor_id)
    return None if name is None else str(name)


async def sku_names(conn: asyncpg.Connection, sku_ids: Iterable[str]) -> dict[str, str]:
    return {r["sku_id"]: r["name"] for r in await conn.fetch(_SKU_NAMES_SQL, sorted(set(sku_ids)))}


async def distributor_names(conn: asyncpg.Connection, distributor_ids: Iterable[str]) -> dict[str, str]:
    rows = await conn.fetch(_DISTRIBUTOR_NAMES_SQL, sorted(set(distributor_ids)))
    return {r["distributor_id"]: r["name"] for r in rows}
