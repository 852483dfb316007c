"""The daily secondary-sales projection: OrderCaptured -> (day, outlet, SKU) value, units, lines."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg

from query_api.freshness import RECORD_FRESHNESS
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_runtime.db import json_rows

_UPSERT_SALES = """
INSERT INTO sales_daily (day, outlet_id, sku_id, value, units, lines)
SELECT (r->>0)::date, r->>1, r->>2, (r->>3)::numeric, (r->>4)::bigint, (r->>5)::int
FROM jsonb_array_elements($1::text::jsonb) AS r
ON CONFLICT (day, outlet_id, sku_id) DO UPDATE
SET value = sales_daily.value + excluded.value,
    units = sales_daily.units + excluded.units,
    lines = sales_daily.lines + excluded.lines
"""


SalesKey = tuple[date, str, str]


def aggregate_orders(orders: Sequence[OrderCaptured], zone: ZoneInfo) -> dict[SalesKey, tuple[Decimal, int, int]]:
    """Sum order lines per business day (in the brand's time zone), outlet and SKU."""
    totals: dict[SalesKey, list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0, 0])
    for order in orders:
        day = order.occurred_at.astimezone(zone).date()
        for line in order.payload.lines:
            cell = totals[(day, order.payload.outlet_id, line.sku_id)]
            cell[0] += line.unit_price * line.quantity
            cell[1] += line.quantity
            cell[2] += 1
    return {key: (Decimal(v[0]), int(v[1]), int(v[2])) for key, v in totals.items()}


async def apply_orders(conn: asyncpg.Connection, events: Sequence[Envelope], zone: ZoneInfo) -> None:
    orders = [e for e in events if isinstance(e, OrderCaptured)]
    if not orders:
        return
    totals = aggregate_orders(orders, zone)
    await conn.execute(_UPSERT_SALES, json_rows([key + cell for key, cell in totals.items()]))
    await conn.execute(
        RECORD_FRESHNESS,
        "sales_daily",
        max(o.occurred_at for o in orders),
        max((o.recorded_at for o in orders if o.recorded_at), default=None),
    )
