"""One retailer's activity: its orders with their lines, cancellation and deliveries, its returns and its reps'
visits, read from the net-sales facts (projections/sales.py) and the visits (projections/outlet_visits.py)."""

from datetime import date

import asyncpg

_OUTLET = """
SELECT o.outlet_id, o.name, o.distributor_id, d.name AS distributor_name, o.channel, o.outlet_class, o.lat, o.lon
FROM outlets o LEFT JOIN distributors d ON d.distributor_id = o.distributor_id
WHERE o.outlet_id = $1
"""
_HAS_FACTS = """
SELECT EXISTS (SELECT 1 FROM sales_orders WHERE outlet_id = $1)
    OR EXISTS (SELECT 1 FROM sales_returns WHERE outlet_id = $1)
"""
# Newest first. An order counts as cancelled while its cancellation counts (no delivery), as in the sales rows.
_ORDERS = """
SELECT o.distributor_id, o.order_id, o.event_id, o.day, o.occurred_at, o.recorded_at, o.rep_id, o.source,
       o.lat, o.lon, o.accuracy_m, c.occurred_at AS cancelled_at, c.reason AS cancel_reason,
       EXISTS (SELECT 1 FROM sales_deliveries d WHERE d.distributor_id = o.distributor_id AND d.order_id = o.order_id)
           AS delivered,
       coalesce(bool_or(s.cancelled_counted), false) AS cancelled,
       jsonb_agg(jsonb_build_object('sku_id', s.sku_id, 'ordered_units', s.ordered_units,
                                    'ordered_value', s.ordered_value::text, 'delivered_units', s.delivered_counted,
                                    'units_per_case', k.units_per_case)
                 ORDER BY s.sku_id) AS lines,
       sum(s.ordered_value) AS ordered_value
FROM sales_orders o
CROSS JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s
LEFT JOIN skus k ON k.sku_id = s.sku_id
LEFT JOIN sales_cancellations c ON c.distributor_id = o.distributor_id AND c.order_id = o.order_id
WHERE o.outlet_id = $1 AND o.day BETWEEN $2 AND $3
GROUP BY o.distributor_id, o.order_id, c.occurred_at, c.reason
ORDER BY o.occurred_at DESC, o.order_id
LIMIT $4
"""
_RETURNS = """
SELECT r.return_id, r.event_id, r.day, r.occurred_at, r.recorded_at, r.reason, r.source,
       jsonb_agg(jsonb_build_object('sku_id', l.sku_id, 'units', l.units, 'value', coalesce(l.counted_value, 0)::text)
                 ORDER BY l.sku_id) AS lines,
       sum(coalesce(l.counted_value, 0)) AS value
FROM sales_returns r
JOIN sales_return_lines l ON l.distributor_id = r.distributor_id AND l.return_id = r.return_id
WHERE r.outlet_id = $1 AND r.direction = 'from_retailer' AND r.day BETWEEN $2 AND $3
GROUP BY r.distributor_id, r.return_id
ORDER BY r.occurred_at DESC, r.return_id
LIMIT $4
"""
_VISITS = """
SELECT visit_id, event_id, day, occurred_at, recorded_at, rep_id, source, productive, no_order_reason, lat, lon,
       accuracy_m
FROM visits
WHERE outlet_id = $1 AND day BETWEEN $2 AND $3
ORDER BY occurred_at DESC, event_id
LIMIT $4
"""


async def outlet(conn: asyncpg.Connection, outlet_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_OUTLET, outlet_id)


async def has_facts(conn: asyncpg.Connection, outlet_id: str) -> bool:
    """Sales facts exist for an outlet reference data has not named yet."""
    return bool(await conn.fetchval(_HAS_FACTS, outlet_id))


async def activity(
    conn: asyncpg.Connection, outlet_id: str, date_from: date, date_to: date, limit: int
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    """(orders, returns, visits) of one outlet over the days, newest first, at most `limit` of each."""
    arguments = (outlet_id, date_from, date_to, limit)
    return (
        list(await conn.fetch(_ORDERS, *arguments)),
        list(await conn.fetch(_RETURNS, *arguments)),
        list(await conn.fetch(_VISITS, *arguments)),
    )
