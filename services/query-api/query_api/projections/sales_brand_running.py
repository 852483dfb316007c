"""Running totals per (brand, outlet) (migration 0028), for the drill-down at outlet level with a brand filter
(reads/sales.py: _DRILL_OUTLET_BRAND_RUNNING_SQL), which otherwise sums the brand's lines of the range per outlet
(683 ms at 10M lines across 5,000 outlets: every line of a tenth of the table).

`sales_outlet_brand_running` is sparse, unlike sales_outlet_running: a row only for a (brand, outlet, day) with lines,
its figures (and `rows`, the count of sales_lines rows, which is what makes the line statements list an outlet)
summed from the pair's first day up to and including that day. A dense table would hold brands x outlets x days
rows at any line count (4.5M for the bench's 5,000 outlets, 10 brands and 90 days, even at 200k lines). The
figures as of day X are the pair's last row on or before X: `sales_outlet_brand_totals` (one row per pair: its first
and last day with lines and its figures as of the last) answers it without a search for X on or after the last
day and nothing for X before the first; only for X inside a pair's days is its running row looked up (one index
descent). A range ending today therefore reads two totals rows a pair at most and no running row. Since migration
0032 a pair's last day is in its totals row only (`sales_outlet_brand_running` holds the days before it, all the
lookup for X inside a pair's days needs): a live line, of the pair's last day or a later one, writes its totals row
alone, and a day's running row is written once, when a later day's line makes it a past day.

Keyed by brand, unlike the per-outlet tables: a SKU re-branded moves its lines from one brand to another, so both
brands' rows are derived again from sales_lines (`rederive_brands`, called by sales_rollups.move_skus under the
exclusive rollup lock, after the fold emptied the queue: every line of sales_lines is then folded). Only SKUs with a
brand count; lines of a SKU not yet known are added when a SkuRegistered gives it one (a re-brand from none).

The live upkeep is absolute, as sales_running.py's: each affected (brand, outlet, day) row is recomputed from the
rows as they were before the statement plus the batch's lines up to that day (the fold is the only writer, one at
a time under its advisory lock).

Kept on the running totals' interval (migration 0032): every fold queues its lines per (outlet, brand, day) in the
outlets' running queue (sales_running.queue_for_running), and the move of that queue (FOLD_RUNNING, every
SELLTHROUGH_SALES_RUNNING_FOLD_SECONDS) adds them here in the statement that adds them to the outlets' tables.
Kept by every fold instead, a pair's rows were rewritten once a fold (per folded row backend CPU 58 -> 101 us, WAL
1,741 -> 3,074 B). The read adds the queue's rows of the brand, as it adds sales_lines_unfolded's; a re-brand folds
both queues first (dimensions.py: `fold(conn)`), so the queue's brands are the SKUs' brands now.
"""

from collections.abc import Mapping

import asyncpg

from query_api.figures.measures import NAMES, sums

RUNNING = "sales_outlet_brand_running"
TOTALS = "sales_outlet_brand_totals"
TABLES = (RUNNING, TOTALS)

_FIGURES = ("rows", *NAMES)
_FIGURE_LIST = ", ".join(_FIGURES)
_WINDOWED = ", ".join(f"sum({name}) OVER w AS {name}" for name in _FIGURES)
_OVERWRITE = ", ".join(f"{name} = excluded.{name}" for name in _FIGURES)
_BEFORE_PLUS_ADDED = ", ".join(
    f"coalesce(CASE WHEN f.old_last <= x.day THEN f.{name} ELSE b.{name} END, 0) + coalesce(c.{name}, 0) AS {name}"
    for name in _FIGURES
)


def outlet_brand_running_rollup(queued: str) -> str:
    """Data-modifying CTEs (`brand_deltas AS (...), ...`) adding the rows of the CTE `queued` (rows of the running
    queue, sales_running.py: outlet_id, day, brand, rows and the figures, several per key; those without a brand
    left out) to both tables. Per (brand, outlet) the batch touches, the rows it rewrites are the batch's days and
    the pair's existing days after the batch's first (none in the live case, where lines are of the pair's latest
    day or a later one; a late line rewrites the pair's later rows)."""
    return f"""
brand_deltas AS (
    SELECT n.brand, n.outlet_id, n.day, sum(n.rows) AS rows, {sums("n.")}
    FROM {queued} n
    WHERE n.brand IS NOT NULL
    GROUP BY n.brand, n.outlet_id, n.day
), brand_added AS (
    -- The batch's figures per pair summed up to each of its days, valid until its next one.
    SELECT brand, outlet_id, day, lead(day) OVER o AS next_day, {_WINDOWED}
    FROM brand_deltas
    WINDOW o AS (PARTITION BY brand, outlet_id ORDER BY day), w AS (o ROWS UNBOUNDED PRECEDING)
), brand_first AS (
    -- Per pair the batch touches: its first day in the batch, its last day before (`old_last`, its totals row's,
    -- with the figures as of it) and after, and its first day after.
    SELECT f.brand, f.outlet_id, f.first_day, t.day AS old_last, greatest(f.last_new, t.day) AS last_day,
           least(f.first_day, t.first_day) AS pair_first, {column_list_of("t.")}
    FROM (
        SELECT brand, outlet_id, min(day) AS first_day, max(day) AS last_new FROM brand_deltas GROUP BY 1, 2
    ) AS f
    -- By key (OFFSET 0 keeps it a lateral: joined plainly the planner may hash the whole table).
    LEFT JOIN LATERAL (
        SELECT * FROM {TOTALS} t WHERE t.brand = f.brand AND t.outlet_id = f.outlet_id OFFSET 0
    ) AS t ON true
), brand_days AS (
    -- The batch's days, the pair's running days after its first (a late line), and its old last day (a running
    -- row from now on when the batch ends later; the pair's last again, and so in its totals row only, otherwise).
    SELECT brand, outlet_id, day FROM brand_deltas
    UNION
    SELECT brand, outlet_id, old_last FROM brand_first WHERE old_last IS NOT NULL
    UNION
    SELECT f.brand, f.outlet_id, later.day
    FROM brand_first f
    CROSS JOIN LATERAL (
        SELECT r.day FROM {RUNNING} r
        WHERE r.brand = f.brand AND r.outlet_id = f.outlet_id AND r.day > f.first_day
        OFFSET 0
    ) AS later
    WHERE f.old_last > f.first_day
), brand_rows AS (
    -- Each affected day's figures: the pair's as of that day before this statement (its totals row from its old
    -- last day on; before it, its last running row on or before the day, looked up by key: the planner cannot
    -- count a CTE's rows and would hash the whole table) plus the batch's up to the day.
    SELECT x.brand, x.outlet_id, x.day, f.last_day, f.pair_first, {_BEFORE_PLUS_ADDED}
    FROM brand_days x
    JOIN brand_first f ON f.brand = x.brand AND f.outlet_id = x.outlet_id
    LEFT JOIN LATERAL (
        SELECT * FROM {RUNNING} r
        WHERE r.brand = x.brand AND r.outlet_id = x.outlet_id AND r.day <= x.day AND x.day < f.old_last
        ORDER BY r.day DESC LIMIT 1
    ) AS b ON true
    LEFT JOIN brand_added c
      ON c.brand = x.brand AND c.outlet_id = x.outlet_id AND c.day <= x.day
     AND (c.next_day IS NULL OR x.day < c.next_day)
), by_brand_running AS (
    -- Every day but the pair's last, which its totals row holds.
    INSERT INTO {RUNNING} (brand, outlet_id, day, {_FIGURE_LIST})
    SELECT brand, outlet_id, day, {_FIGURE_LIST} FROM brand_rows WHERE day < last_day
    ON CONFLICT (brand, outlet_id, day) DO UPDATE SET {_OVERWRITE}
), by_brand_totals AS (
    INSERT INTO {TOTALS} AS t (brand, outlet_id, first_day, day, {_FIGURE_LIST})
    SELECT brand, outlet_id, pair_first, day, {_FIGURE_LIST} FROM brand_rows WHERE day = last_day
    ON CONFLICT (brand, outlet_id) DO UPDATE
    SET first_day = excluded.first_day, day = excluded.day, {_OVERWRITE}
)"""  # noqa: S608 (names fixed in code)


def column_list_of(prefix: str) -> str:
    """`r.rows, r.value, …`: the running figures, qualified."""
    return ", ".join(f"{prefix}{name}" for name in _FIGURES)


def _derive(where: str) -> str:
    """Both tables' rows of the pairs `where` picks (a condition on `k`, the SKU, and `s`, the line), derived from
    sales_lines."""
    return f"""
WITH d AS (
    SELECT k.brand, s.outlet_id, s.day, count(*) AS rows, {sums("s.")}
    FROM sales_lines s
    JOIN skus k ON k.sku_id = s.sku_id
    WHERE {where}
    GROUP BY k.brand, s.outlet_id, s.day
), r AS (
    SELECT brand, outlet_id, day, lead(day) OVER o AS next_day, min(day) OVER o AS first_day, {_WINDOWED}
    FROM d
    WINDOW o AS (PARTITION BY brand, outlet_id ORDER BY day), w AS (o ROWS UNBOUNDED PRECEDING)
), totals AS (
    INSERT INTO {TOTALS} (brand, outlet_id, first_day, day, {_FIGURE_LIST})
    SELECT brand, outlet_id, first_day, day, {_FIGURE_LIST} FROM r WHERE next_day IS NULL
)
INSERT INTO {RUNNING} (brand, outlet_id, day, {_FIGURE_LIST})
SELECT brand, outlet_id, day, {_FIGURE_LIST} FROM r WHERE next_day IS NOT NULL  -- the last day: its totals row
ORDER BY brand, outlet_id, day
"""  # noqa: S608 (names fixed in code)


_EMPTY = f"DELETE FROM {RUNNING}; DELETE FROM {TOTALS};"  # noqa: S608 (names fixed in code)


def bulk_outlet_brand_running() -> str:
    """Both tables from every line after a bulk load (emptied first: a reference change read while orders load may
    have derived rows from the lines loaded so far). Written in key order: a pair's rows share pages."""
    return _EMPTY + _derive("k.brand IS NOT NULL") + ";"


# The pairs a re-brand changes: the brands left and joined ($1), at the outlets with lines of the SKUs moved ($2)
# (sales_lines_by_sku): a SKU registered before any sale, the usual case, changes none.
_SOLD_AT = "(SELECT m.outlet_id FROM sales_lines m WHERE m.sku_id = ANY($2::text[]))"
_MOVED_PAIRS = f"brand = ANY($1::text[]) AND outlet_id IN {_SOLD_AT}"
_FORGET_BRANDS = f"""
WITH gone AS (DELETE FROM {RUNNING} WHERE {_MOVED_PAIRS})
DELETE FROM {TOTALS} WHERE {_MOVED_PAIRS}
"""  # noqa: S608 (names fixed in code)
_DERIVE_BRANDS = _derive(f"k.brand = ANY($1::text[]) AND s.outlet_id IN {_SOLD_AT}")
_BRANDS_NOW = "SELECT DISTINCT brand FROM skus WHERE sku_id = ANY($1::text[])"


async def rederive_brands(conn: asyncpg.Connection, old_brand: Mapping[str, str | None]) -> None:
    """SKUs re-branded (their brand before; None: none), after skus changed and with nothing queued: the rows of the
    brands they left and joined, at the outlets that sold them, derived again from sales_lines. Costs what those
    outlets sold of the two brands, where a move by the SKUs' lines would rewrite every later running row of each
    pair they touch anyway."""
    if not old_brand:
        return
    now = [r[0] for r in await conn.fetch(_BRANDS_NOW, list(old_brand))]
    named = sorted({b for b in (*old_brand.values(), *now) if b is not None})
    if named:
        await conn.execute(_FORGET_BRANDS, named, list(old_brand))
        await conn.execute(_DERIVE_BRANDS, named, list(old_brand))
