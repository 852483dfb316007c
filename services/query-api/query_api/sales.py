"""The daily secondary-sales projection: OrderCaptured -> (day, outlet, SKU, rep) value, units, lines, read by the
drill-down and the KPIs, and its rollups per (outlet, day), per (day, distributor) and per (day, distributor, brand)
for the drill-down."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg

from query_api.freshness import NewestTimes, newest_times
from query_api.sales_rollups import LOCK_FOR_SALES
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_runtime.db import json_rows

# One statement keeps sales_daily and its rollups (migration 0006) in step: each data-modifying CTE runs once.
_UPSERT_SALES = """
WITH batch (day, outlet_id, sku_id, rep_id, value, units, lines) AS (
    SELECT (r->>0)::date, r->>1, r->>2, r->>3, (r->>4)::numeric, (r->>5)::bigint, (r->>6)::int
    FROM jsonb_array_elements($1::text::jsonb) AS r
), by_sku AS (
    INSERT INTO sales_daily (day, outlet_id, sku_id, rep_id, value, units, lines)
    SELECT * FROM batch
    ON CONFLICT (day, outlet_id, sku_id, rep_id) DO UPDATE
    SET value = sales_daily.value + excluded.value,
        units = sales_daily.units + excluded.units,
        lines = sales_daily.lines + excluded.lines
), by_outlet AS (
    INSERT INTO sales_outlet_daily (outlet_id, day, value, units, lines)
    SELECT outlet_id, day, sum(value), sum(units), sum(lines) FROM batch GROUP BY outlet_id, day
    ON CONFLICT (outlet_id, day) DO UPDATE
    SET value = sales_outlet_daily.value + excluded.value,
        units = sales_outlet_daily.units + excluded.units,
        lines = sales_outlet_daily.lines + excluded.lines
), placed (day, distributor_id, brand, value, units, lines) AS (
    SELECT b.day, o.distributor_id, k.brand, sum(b.value), sum(b.units), sum(b.lines)
    FROM batch b
    LEFT JOIN outlets o ON o.outlet_id = b.outlet_id
    LEFT JOIN skus k ON k.sku_id = b.sku_id
    GROUP BY b.day, o.distributor_id, k.brand
), by_brand AS (
    INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, value, units, lines)
    SELECT * FROM placed
    ON CONFLICT ON CONSTRAINT sales_distributor_brand_daily_key DO UPDATE
    SET value = sales_distributor_brand_daily.value + excluded.value,
        units = sales_distributor_brand_daily.units + excluded.units,
        lines = sales_distributor_brand_daily.lines + excluded.lines
)
INSERT INTO sales_distributor_daily (day, distributor_id, value, units, lines)
SELECT day, distributor_id, sum(value), sum(units), sum(lines) FROM placed GROUP BY day, distributor_id
ON CONFLICT ON CONSTRAINT sales_distributor_daily_key DO UPDATE
SET value = sales_distributor_daily.value + excluded.value,
    units = sales_distributor_daily.units + excluded.units,
    lines = sales_distributor_daily.lines + excluded.lines
"""


SalesKey = tuple[date, str, str, str]


def aggregate_orders(orders: Sequence[OrderCaptured], zone: ZoneInfo) -> dict[SalesKey, tuple[Decimal, int, int]]:
    """Sum order lines per business day (in the brand's time zone), outlet, SKU and rep."""
    totals: dict[SalesKey, list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0, 0])
    for order in orders:
        day = order.occurred_at.astimezone(zone).date()
        for line in order.payload.lines:
            cell = totals[(day, order.payload.outlet_id, line.sku_id, order.payload.rep_id)]
            cell[0] += line.unit_price * line.quantity
            cell[1] += line.quantity
            cell[2] += 1
    return {key: (Decimal(v[0]), int(v[1]), int(v[2])) for key, v in totals.items()}


@dataclass(frozen=True)
class SalesWrites:
    """A batch's orders ready to write: the summed rows (one JSON parameter, see json_rows) and the newest event
    times, for record_freshness."""

    rows: str
    newest: NewestTimes


def prepare_sales(events: Sequence[Envelope], zone: ZoneInfo) -> SalesWrites | None:
    """What write_sales writes for these events (None: no orders among them), computed without the database."""
    orders = [e for e in events if isinstance(e, OrderCaptured)]
    newest = newest_times("sales_daily", orders)
    if newest is None:
        return None
    totals = aggregate_orders(orders, zone)
    return SalesWrites(json_rows([key + cell for key, cell in totals.items()]), newest)


async def write_sales(conn: asyncpg.Connection, writes: SalesWrites | None) -> None:
    if writes is None:
        return
    await conn.execute(LOCK_FOR_SALES)
    await conn.execute(_UPSERT_SALES, writes.rows)
