"""The event-time stock ledger in Postgres: record movements and counts, derive positions and variances.

Book stock of (distributor, SKU) = the latest count (by counted_at, then event id) + every active movement
after it. A movement at exactly the count's time is taken as counted. An order's own movement is inactive
once the order is delivered (the delivery's movement replaces it) or cancelled. Everything is a function
of the set of events, so neither arrival order nor duplicates change any figure.
"""

from collections.abc import Sequence
from dataclasses import astuple

import asyncpg

from stock_ledger.domain.movements import CountLine, Movement
from stock_ledger.domain.positions import CountBook, Key, Position, TouchedPositions

_INSERT_MOVEMENTS = """
INSERT INTO movements (event_id, line_no, distributor_id, sku_id, occurred_at, kind, delta, order_id)
SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bigint[],
                     $8::text[])
ON CONFLICT DO NOTHING
"""
_INSERT_COUNTS = """
INSERT INTO counts (event_id, sku_id, count_id, distributor_id, counted_at, quantity, purpose)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[])
ON CONFLICT DO NOTHING
"""
_MARK_ORDERS = """
INSERT INTO orders (distributor_id, order_id, delivered, cancelled)
SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bool[])
ON CONFLICT (distributor_id, order_id) DO UPDATE
SET delivered = orders.delivered OR excluded.delivered, cancelled = orders.cancelled OR excluded.cancelled
"""
# An order's own movements stop counting once it is delivered or cancelled; returns the positions touched.
_SETTLE_ORDER_MOVEMENTS = """
UPDATE movements m SET active = NOT (o.delivered OR o.cancelled)
FROM orders o, unnest($1::text[], $2::text[]) AS touched(distributor_id, order_id)
WHERE o.distributor_id = touched.distributor_id AND o.order_id = touched.order_id
  AND m.distributor_id = o.distributor_id AND m.order_id = o.order_id AND m.kind = 'order'
  AND m.active IS DISTINCT FROM NOT (o.delivered OR o.cancelled)
RETURNING m.distributor_id, m.sku_id, m.occurred_at
"""
_POSITIONS = """
WITH keys AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id)),
last_count AS (
    SELECT DISTINCT ON (c.distributor_id, c.sku_id) c.distributor_id, c.sku_id, c.counted_at, c.quantity
    FROM counts c JOIN keys USING (distributor_id, sku_id)
    ORDER BY c.distributor_id, c.sku_id, c.counted_at DESC, c.event_id DESC
)
SELECT k.distributor_id, k.sku_id,
       coalesce(lc.quantity, 0) + coalesce(after.delta, 0) AS on_hand,
       greatest(lc.counted_at, after.newest) AS as_of
FROM keys k
LEFT JOIN last_count lc USING (distributor_id, sku_id)
LEFT JOIN LATERAL (
    -- newest looks at inactive movements too: a position whose only order was cancelled still exists (at 0)
    SELECT sum(m.delta) FILTER (WHERE m.active AND (lc.counted_at IS NULL OR m.occurred_at > lc.counted_at))
               AS delta,
           max(m.occurred_at) AS newest
    FROM movements m
    WHERE m.distributor_id = k.distributor_id AND m.sku_id = k.sku_id
) after ON true
"""
# Book stock just before each count at or after `since`: the previous count plus active movements between.
_COUNT_BOOKS = """
WITH keys AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(distributor_id, sku_id, since))
SELECT c.event_id, c.sku_id, c.count_id, c.distributor_id, c.counted_at, c.quantity AS counted,
       coalesce(prev.quantity, 0) + coalesce((
           SELECT sum(m.delta) FROM movements m
           WHERE m.distributor_id = c.distributor_id AND m.sku_id = c.sku_id AND m.active
             AND m.occurred_at <= c.counted_at AND (prev.counted_at IS NULL OR m.occurred_at > prev.counted_at)
       ), 0) AS book
FROM counts c
JOIN keys k ON k.distributor_id = c.distributor_id AND k.sku_id = c.sku_id AND c.counted_at >= k.since
LEFT JOIN LATERAL (
    SELECT p.quantity, p.counted_at FROM counts p
    WHERE p.distributor_id = c.distributor_id AND p.sku_id = c.sku_id
      AND (p.counted_at, p.event_id) < (c.counted_at, c.event_id)
    ORDER BY p.counted_at DESC, p.event_id DESC LIMIT 1
) prev ON true
WHERE c.purpose = 'count'
"""


def _columns(rows: Sequence[Movement] | Sequence[CountLine]) -> list[list[object]]:
    """Rows as one list per field, for the unnest() inserts (whose column order is the dataclass field order)."""
    return [list(column) for column in zip(*(astuple(row) for row in rows), strict=True)]


async def record(
    conn: asyncpg.Connection,
    movements: Sequence[Movement],
    counts: Sequence[CountLine],
    settled_orders: Sequence[tuple[str, str, bool, bool]],
) -> TouchedPositions:
    """Store a batch's movements, counts and order outcomes (distributor, order, delivered, cancelled)."""
    touched = TouchedPositions()
    if movements:
        await conn.execute(_INSERT_MOVEMENTS, *_columns(movements))
    for m in movements:
        touched.touch((m.distributor_id, m.sku_id), m.occurred_at, m.event_id)
    if counts:
        await conn.execute(_INSERT_COUNTS, *_columns(counts))
    for c in counts:
        touched.touch((c.distributor_id, c.sku_id), c.counted_at, c.event_id)
    if settled_orders:
        await conn.execute(
            _MARK_ORDERS,
            [s[0] for s in settled_orders],
            [s[1] for s in settled_orders],
            [s[2] for s in settled_orders],
            [s[3] for s in settled_orders],
        )
    orders = {(m.distributor_id, m.order_id) for m in movements if m.order_id} | {s[:2] for s in settled_orders}
    if orders:
        changed = await conn.fetch(_SETTLE_ORDER_MOVEMENTS, [o[0] for o in orders], [o[1] for o in orders])
        for row in changed:
            touched.touch((row["distributor_id"], row["sku_id"]), row["occurred_at"])
    return touched


async def positions(conn: asyncpg.Connection, keys: Sequence[Key]) -> list[Position]:
    rows = await conn.fetch(_POSITIONS, [k[0] for k in keys], [k[1] for k in keys])
    return [
        Position(r["distributor_id"], r["sku_id"], int(r["on_hand"]), r["as_of"])
        for r in rows
        if r["as_of"] is not None
    ]


async def count_books(conn: asyncpg.Connection, touched: TouchedPositions) -> list[CountBook]:
    """Book-before-count figures of every count a batch may have changed."""
    keys = list(touched.since)
    rows = await conn.fetch(_COUNT_BOOKS, [k[0] for k in keys], [k[1] for k in keys], [touched.since[k] for k in keys])
    return [
        CountBook(
            r["event_id"],
            r["sku_id"],
            r["count_id"],
            r["distributor_id"],
            r["counted_at"],
            int(r["book"]),
            int(r["counted"]),
        )
        for r in rows
    ]
