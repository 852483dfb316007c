"""Keeps the distributor sales rollups, per (day, distributor) and per (day, distributor, brand), equal to a
regrouping of sales_daily when reference data changes what a sale rolls up to.

Sales are added to the rollup under the outlet's distributor and the SKU's brand known when they are applied
(sales.py). A later OutletRegistered that re-homes an outlet, or a SkuRegistered that re-brands a SKU, or either
arriving after its first sales (the reference and trade topics are read concurrently), moves the affected
sales from their old rollup rows to the new ones, in the same transaction as the reference change. The sales
to move are read from sales_daily by outlet or by SKU (both indexed), so a move costs what the outlet or SKU
sold, not a rebuild.
"""

from collections.abc import Mapping

import asyncpg

LOCK_FOR_SALES = "SELECT pg_advisory_xact_lock_shared(hashtext('query-api:sales-rollups'))"
"""Taken (in a statement of its own, so the next statement's snapshot comes after it) before sales are added to
the rollups. Shared: transactions adding sales never wait for each other."""
LOCK_FOR_REFERENCE_CHANGE = "SELECT pg_advisory_xact_lock(hashtext('query-api:sales-rollups'))"
"""Taken before an outlet or SKU is upserted. Exclusive: with several consumers (query-api runs two, and instances
scale out), sales added concurrently would otherwise roll up under a distributor or brand read before the change
committed, while the change's move, reading sales_daily before they committed, leaves them where they landed.
It waits for the transactions adding sales to commit, and they wait for it."""

# Moves are summed per row on both sides: several outlets or SKUs may leave or join the same row.
# A move: sales leaving (day, from_distributor, from_brand) for (day, to_distributor, to_brand).
_OUTLET_MOVES = """
SELECT s.day, m.old_distributor_id AS from_distributor, k.brand AS from_brand,
       o.distributor_id AS to_distributor, k.brand AS to_brand,
       sum(s.value) AS value, sum(s.units) AS units, sum(s.lines) AS lines
FROM unnest($1::text[], $2::text[]) AS m (outlet_id, old_distributor_id)
JOIN sales_daily s ON s.outlet_id = m.outlet_id
LEFT JOIN outlets o ON o.outlet_id = m.outlet_id
LEFT JOIN skus k ON k.sku_id = s.sku_id
GROUP BY 1, 2, 3, 4, 5
"""
_SKU_MOVES = """
SELECT s.day, o.distributor_id AS from_distributor, m.old_brand AS from_brand,
       o.distributor_id AS to_distributor, k.brand AS to_brand,
       sum(s.value) AS value, sum(s.units) AS units, sum(s.lines) AS lines
FROM unnest($1::text[], $2::text[]) AS m (sku_id, old_brand)
JOIN sales_daily s ON s.sku_id = m.sku_id
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
LEFT JOIN skus k ON k.sku_id = m.sku_id
GROUP BY 1, 2, 3, 4, 5
"""
# Both distributor rollups change together: per brand, and summed over brands.
_TAKE = """
WITH moved AS (
    SELECT day, distributor_id, brand, sum(value) AS value, sum(units) AS units, sum(lines) AS lines
    FROM unnest($1::date[], $2::text[], $3::text[], $4::numeric[], $5::bigint[], $6::int[])
        AS u (day, distributor_id, brand, value, units, lines)
    GROUP BY 1, 2, 3
), by_brand AS (
    UPDATE sales_distributor_brand_daily t
    SET value = t.value - m.value, units = t.units - m.units, lines = t.lines - m.lines
    FROM moved m
    WHERE t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
      AND t.brand IS NOT DISTINCT FROM m.brand
)
UPDATE sales_distributor_daily t
SET value = t.value - m.value, units = t.units - m.units, lines = t.lines - m.lines
FROM (SELECT day, distributor_id, sum(value) AS value, sum(units) AS units, sum(lines) AS lines
      FROM moved GROUP BY 1, 2) AS m
WHERE t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
"""
_GIVE = """
WITH moved AS (
    SELECT day, distributor_id, brand, sum(value) AS value, sum(units) AS units, sum(lines) AS lines
    FROM unnest($1::date[], $2::text[], $3::text[], $4::numeric[], $5::bigint[], $6::int[])
        AS u (day, distributor_id, brand, value, units, lines)
    GROUP BY 1, 2, 3
), by_brand AS (
    INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, value, units, lines)
    SELECT * FROM moved
    ON CONFLICT ON CONSTRAINT sales_distributor_brand_daily_key DO UPDATE
    SET value = sales_distributor_brand_daily.value + excluded.value,
        units = sales_distributor_brand_daily.units + excluded.units,
        lines = sales_distributor_brand_daily.lines + excluded.lines
)
INSERT INTO sales_distributor_daily (day, distributor_id, value, units, lines)
SELECT day, distributor_id, sum(value), sum(units), sum(lines) FROM moved GROUP BY 1, 2
ON CONFLICT ON CONSTRAINT sales_distributor_daily_key DO UPDATE
SET value = sales_distributor_daily.value + excluded.value,
    units = sales_distributor_daily.units + excluded.units,
    lines = sales_distributor_daily.lines + excluded.lines
"""
# A row whose every sale moved away holds nothing; left in place it would list its node at zero.
_DROP_EMPTIED = """
WITH by_brand AS (
    DELETE FROM sales_distributor_brand_daily t
    USING unnest($1::date[], $2::text[], $3::text[]) AS m (day, distributor_id, brand)
    WHERE t.lines = 0 AND t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
      AND t.brand IS NOT DISTINCT FROM m.brand
)
DELETE FROM sales_distributor_daily t
USING unnest($1::date[], $2::text[]) AS m (day, distributor_id)
WHERE t.lines = 0 AND t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
"""


async def move_outlets(conn: asyncpg.Connection, old_distributor: Mapping[str, str | None]) -> None:
    """Outlets whose distributor changed (None: the outlet was not known), after outlets was updated."""
    if old_distributor:
        await _move(conn, _OUTLET_MOVES, old_distributor)


async def move_skus(conn: asyncpg.Connection, old_brand: Mapping[str, str | None]) -> None:
    """SKUs whose brand changed (None: the SKU was not known), after skus was updated."""
    if old_brand:
        await _move(conn, _SKU_MOVES, old_brand)


async def _move(conn: asyncpg.Connection, moves_sql: str, old: Mapping[str, str | None]) -> None:
    ids = list(old)
    moves = await conn.fetch(moves_sql, ids, [old[i] for i in ids])
    if not moves:
        return
    days = [m["day"] for m in moves]
    figures = ([m["value"] for m in moves], [m["units"] for m in moves], [m["lines"] for m in moves])
    leaving = ([m["from_distributor"] for m in moves], [m["from_brand"] for m in moves])
    await conn.execute(_TAKE, days, *leaving, *figures)
    await conn.execute(_GIVE, days, [m["to_distributor"] for m in moves], [m["to_brand"] for m in moves], *figures)
    await conn.execute(_DROP_EMPTIED, days, *leaving)
