"""Net sales per business day for one scope (any of zone, region, distributor, outlet; SKU or brand; rep): the
dashboard's trend in one request. Reads the rollup that answers the filter, like the drill-down (reads/sales.py)."""

from datetime import date

import asyncpg

from query_api.figures.measures import sums
from query_api.reads.cell import Cell

# $1 from, $2 to, $3 zone, $4 region, $5 distributor, $6 outlet, $7 SKU, $8 brand, $9 rep, $10 the caller's
# distributors (api/caller.py; null: national). The four branches' conditions exclude each other: exactly one reads rows
# (planned for its parameters, the others are pruned).
_DAILY = f"""
WITH days AS (
    SELECT t.day, {sums("t.")}
    FROM sales_distributor_daily_now t
    LEFT JOIN distributor_geography g ON g.distributor_id = t.distributor_id
    WHERE t.day BETWEEN $1 AND $2
      AND $6::text IS NULL AND $7::text IS NULL AND $8::text IS NULL AND $9::text IS NULL
      AND ($3::text IS NULL OR g.zone_id = $3) AND ($4::text IS NULL OR g.region_id = $4)
      AND ($5::text IS NULL OR t.distributor_id = $5) AND ($10::text[] IS NULL OR t.distributor_id = ANY($10))
    GROUP BY t.day
    UNION ALL
    SELECT t.day, {sums("t.")}
    FROM sales_distributor_brand_daily_now t
    LEFT JOIN distributor_geography g ON g.distributor_id = t.distributor_id
    WHERE t.day BETWEEN $1 AND $2 AND t.brand = $8
      AND $6::text IS NULL AND $7::text IS NULL AND $9::text IS NULL
      AND ($3::text IS NULL OR g.zone_id = $3) AND ($4::text IS NULL OR g.region_id = $4)
      AND ($5::text IS NULL OR t.distributor_id = $5) AND ($10::text[] IS NULL OR t.distributor_id = ANY($10))
    GROUP BY t.day
    UNION ALL
    SELECT t.day, {sums("t.")}
    FROM sales_outlet_daily_now t
    WHERE t.outlet_id = $6 AND t.day BETWEEN $1 AND $2
      AND $7::text IS NULL AND $8::text IS NULL AND $9::text IS NULL
      AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM outlets o WHERE o.outlet_id = $6 AND o.distributor_id = $5))
      AND ($10::text[] IS NULL OR EXISTS (
          SELECT 1 FROM outlets o WHERE o.outlet_id = $6 AND o.distributor_id = ANY($10)))
      AND ($3::text IS NULL AND $4::text IS NULL OR EXISTS (
          SELECT 1 FROM outlets o JOIN distributor_geography g ON g.distributor_id = o.distributor_id
          WHERE o.outlet_id = $6 AND ($3::text IS NULL OR g.zone_id = $3) AND ($4::text IS NULL OR g.region_id = $4)))
    GROUP BY t.day
    UNION ALL
    SELECT s.day, {sums("s.")}
    FROM sales_lines s
    LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
    LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $1 AND $2
      AND ($7::text IS NOT NULL OR $9::text IS NOT NULL OR ($6::text IS NOT NULL AND $8::text IS NOT NULL))
      AND ($3::text IS NULL OR g.zone_id = $3) AND ($4::text IS NULL OR g.region_id = $4)
      AND ($5::text IS NULL OR o.distributor_id = $5) AND ($6::text IS NULL OR s.outlet_id = $6)
      AND ($7::text IS NULL OR s.sku_id = $7) AND ($8::text IS NULL OR k.brand = $8)
      AND ($9::text IS NULL OR s.rep_id = $9) AND ($10::text[] IS NULL OR o.distributor_id = ANY($10))
    GROUP BY s.day
)
SELECT day, {sums()} FROM days GROUP BY day ORDER BY day
"""  # noqa: S608 (names from figures.measures, fixed at import)


async def daily_sales(conn: asyncpg.Connection, date_from: date, date_to: date, keys: Cell) -> list[asyncpg.Record]:
    """Days with sales only; the caller fills the others with zeros."""
    k = keys
    scope = None if k.distributors is None else list(k.distributors)
    return list(
        await conn.fetch(
            _DAILY, date_from, date_to, k.zone, k.region, k.distributor, k.outlet, k.sku, k.brand, k.rep, scope
        )
    )
