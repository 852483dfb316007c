"""Keeps the distributor sales rollups, per (day, distributor), per (day, distributor, brand) and per (day,
distributor, SKU), equal to a regrouping of sales_lines when reference data changes what a sale rolls up to.

Sales are added to the rollup under the outlet's distributor and the SKU's brand known when they are applied
(sales.py). A later OutletRegistered that re-homes an outlet, or a SkuRegistered that re-brands a SKU, or either
arriving after its first sales (the reference and trade topics are read concurrently), moves the affected
sales from their old rollup rows to the new ones, in the same transaction as the reference change. The sales
to move are read from sales_lines by outlet or by SKU (both indexed), so a move costs what the outlet or SKU
sold, not a rebuild.
"""

from collections.abc import Mapping

import asyncpg

from query_api.figures.measures import NAMES, accumulate, all_zero, column_list, json_casts, subtract, sums
from query_api.projections.sales_brand_running import rederive_brands
from sellthrough_runtime.db import json_rows

LOCK_FOR_SALES = "SELECT pg_advisory_xact_lock_shared(hashtext('query-api:sales-rollups'))"
"""Taken (in a statement of its own, so the next statement's snapshot comes after it) before sales are added to
the rollups. Shared: transactions adding sales never wait for each other."""
LOCK_FOR_REFERENCE_CHANGE = "SELECT pg_advisory_xact_lock(hashtext('query-api:sales-rollups'))"
"""Taken before an outlet or SKU is upserted. Exclusive: with several consumers (query-api runs two, and instances
scale out), sales added concurrently would otherwise roll up under a distributor or brand read before the change
committed, while the change's move, reading sales_lines before they committed, leaves them where they landed.
It waits for the transactions adding sales to commit, and they wait for it."""

# Moves are summed per row on both sides: several outlets or SKUs may leave or join the same row.
# A move: sales leaving (day, from_distributor, from_brand) for (day, to_distributor, to_brand).
_OUTLET_MOVES = f"""
SELECT s.day, m.old_distributor_id AS from_distributor, k.brand AS from_brand,
       o.distributor_id AS to_distributor, k.brand AS to_brand, {sums("s.")}
FROM unnest($1::text[], $2::text[]) AS m (outlet_id, old_distributor_id)
JOIN sales_lines s ON s.outlet_id = m.outlet_id
LEFT JOIN outlets o ON o.outlet_id = m.outlet_id
LEFT JOIN skus k ON k.sku_id = s.sku_id
GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608 (names from figures.measures, fixed at import)
_SKU_MOVES = f"""
SELECT s.day, o.distributor_id AS from_distributor, m.old_brand AS from_brand,
       o.distributor_id AS to_distributor, k.brand AS to_brand, {sums("s.")}
FROM unnest($1::text[], $2::text[]) AS m (sku_id, old_brand)
JOIN sales_lines s ON s.sku_id = m.sku_id
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
LEFT JOIN skus k ON k.sku_id = m.sku_id
GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608 (names from figures.measures, fixed at import)
_MOVED = f"""
moved AS (
    SELECT day, distributor_id, brand, {sums()}
    FROM (SELECT (r->>0)::date AS day, r->>1 AS distributor_id, r->>2 AS brand, {json_casts(3)}
          FROM jsonb_array_elements($1::text::jsonb) AS r) AS u
    GROUP BY 1, 2, 3
)"""  # noqa: S608 (names from figures.measures, fixed at import)
# Both distributor rollups change together: per brand, and summed over brands.
_TAKE = f"""
WITH {_MOVED}, by_brand AS (
    UPDATE sales_distributor_brand_daily t
    SET {subtract("t", "m")}
    FROM moved m
    WHERE t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
      AND t.brand IS NOT DISTINCT FROM m.brand
)
UPDATE sales_distributor_daily t
SET {subtract("t", "m")}
FROM (SELECT day, distributor_id, {sums()} FROM moved GROUP BY 1, 2) AS m
WHERE t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
"""  # noqa: S608 (names from figures.measures, fixed at import)
_GIVE = f"""
WITH {_MOVED}, by_brand AS (
    INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, {column_list()})
    SELECT * FROM moved
    ON CONFLICT ON CONSTRAINT sales_distributor_brand_daily_key DO UPDATE
    SET {accumulate("sales_distributor_brand_daily")}
)
INSERT INTO sales_distributor_daily (day, distributor_id, {column_list()})
SELECT day, distributor_id, {sums()} FROM moved GROUP BY 1, 2
ON CONFLICT ON CONSTRAINT sales_distributor_daily_key DO UPDATE
SET {accumulate("sales_distributor_daily")}
"""  # noqa: S608 (names from figures.measures, fixed at import)
# A row whose every sale moved away holds nothing; left in place it would list its node at zero.
_DROP_EMPTIED = f"""
WITH by_brand AS (
    DELETE FROM sales_distributor_brand_daily t
    USING unnest($1::date[], $2::text[], $3::text[]) AS m (day, distributor_id, brand)
    WHERE {all_zero("t.")} AND t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
      AND t.brand IS NOT DISTINCT FROM m.brand
)
DELETE FROM sales_distributor_daily t
USING unnest($1::date[], $2::text[]) AS m (day, distributor_id)
WHERE {all_zero("t.")} AND t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
"""  # noqa: S608 (names from figures.measures, fixed at import)


# The SKU rollup follows an outlet's distributor (a SKU's brand is not part of it): its sales per (day, SKU) leave
# (day, old distributor, SKU) for (day, new distributor, SKU), summed per row on both sides. Taken and given in two
# statements, as _TAKE and _GIVE: one statement cannot change a row twice (two outlets swapping distributors).
_OUTLET_SKU_MOVED = f"""
moved AS (
    SELECT s.day, m.old_distributor_id AS from_distributor, o.distributor_id AS to_distributor, s.sku_id,
           {sums("s.")}
    FROM unnest($1::text[], $2::text[]) AS m (outlet_id, old_distributor_id)
    JOIN sales_lines s ON s.outlet_id = m.outlet_id
    LEFT JOIN outlets o ON o.outlet_id = m.outlet_id
    GROUP BY 1, 2, 3, 4
)"""  # noqa: S608 (names from figures.measures, fixed at import)
_TAKE_SKUS = f"""
WITH {_OUTLET_SKU_MOVED}
UPDATE sales_distributor_sku_daily t
SET {subtract("t", "m")}
FROM (SELECT day, from_distributor, sku_id, {sums()} FROM moved GROUP BY 1, 2, 3) AS m
WHERE t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.from_distributor AND t.sku_id = m.sku_id
RETURNING t.day, t.distributor_id, t.sku_id
"""  # noqa: S608 (names from figures.measures, fixed at import)
_GIVE_SKUS = f"""
WITH {_OUTLET_SKU_MOVED}
INSERT INTO sales_distributor_sku_daily (day, distributor_id, sku_id, {column_list()})
SELECT day, to_distributor, sku_id, {sums()} FROM moved GROUP BY 1, 2, 3
ON CONFLICT ON CONSTRAINT sales_distributor_sku_daily_key DO UPDATE
SET {accumulate("sales_distributor_sku_daily")}
"""  # noqa: S608 (names from figures.measures, fixed at import)
# A SKU rollup row whose every sale moved away holds nothing; left in place it would list its node at zero.
_DROP_EMPTIED_SKUS = f"""
DELETE FROM sales_distributor_sku_daily t
USING unnest($1::date[], $2::text[], $3::text[]) AS m (day, distributor_id, sku_id)
WHERE {all_zero("t.")} AND t.day = m.day AND t.distributor_id IS NOT DISTINCT FROM m.distributor_id
  AND t.sku_id = m.sku_id
"""  # noqa: S608 (names from figures.measures, fixed at import)


async def move_outlets(conn: asyncpg.Connection, old_distributor: Mapping[str, str | None]) -> None:
    """Outlets whose distributor changed (None: the outlet was not known), after outlets was updated."""
    if old_distributor:
        await _move(conn, _OUTLET_MOVES, old_distributor)
        ids = list(old_distributor)
        olds = [old_distributor[i] for i in ids]
        emptied = await conn.fetch(_TAKE_SKUS, ids, olds)
        await conn.execute(_GIVE_SKUS, ids, olds)
        if emptied:
            await conn.execute(_DROP_EMPTIED_SKUS, *(list(column) for column in zip(*emptied, strict=True)))


async def move_skus(conn: asyncpg.Connection, old_brand: Mapping[str, str | None]) -> None:
    """SKUs whose brand changed (None: the SKU was not known), after skus was updated."""
    if old_brand:
        await _move(conn, _SKU_MOVES, old_brand)
        await rederive_brands(conn, old_brand)


async def _move(conn: asyncpg.Connection, moves_sql: str, old: Mapping[str, str | None]) -> None:
    ids = list(old)
    moves = await conn.fetch(moves_sql, ids, [old[i] for i in ids])
    if not moves:
        return
    figures = [[m[name] for name in NAMES] for m in moves]
    leaving = [(m["day"], m["from_distributor"], m["from_brand"]) for m in moves]
    arriving = [(m["day"], m["to_distributor"], m["to_brand"]) for m in moves]
    await conn.execute(_TAKE, json_rows([(*key, *f) for key, f in zip(leaving, figures, strict=True)]))
    await conn.execute(_GIVE, json_rows([(*key, *f) for key, f in zip(arriving, figures, strict=True)]))
    await conn.execute(_DROP_EMPTIED, *(list(column) for column in zip(*leaving, strict=True)))
