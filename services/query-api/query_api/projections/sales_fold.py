"""Folds the order lines the live path queued (sales_lines_unfolded, migration 0018) into the four sales rollups.

The consumer's transaction appends a batch's rows to sales_lines and queues them; it no longer upserts the rollups
(their upserts were 45% of a batch's database time, docs/benchmarks.md). `fold` moves queued rows into the rollups
in one transaction: the DELETE ... RETURNING that takes them off the queue and the upserts that add them commit
together, so each row is counted in exactly one of the two at any snapshot, and reads (reads/sales.py,
sales_trend.py) read the `*_now` views, rollup plus queue, which are exact whether or not the fold has run. The
fold sees only committed rows, so a batch still in flight is simply left for the next fold (no sequence cursor
that a late commit could be skipped by).

Rows are placed under the outlet's distributor and the SKU's brand known when they are folded, which is what the
views show for queued rows. A reference change folds everything first, under the exclusive rollup lock, before it
changes an outlet or SKU (dimensions.py), so sales_rollups.py's moves find every line of sales_lines in a rollup.

Who folds: `fold_job`, one per query-api process, after every `interval` seconds, at most `max_lines` rows a
transaction, again at once while the queue held more. Folds of several processes take turns (an advisory lock).
"""

import asyncio
import logging
import time

import asyncpg
from prometheus_client import Histogram

from query_api.figures.measures import accumulate, column_list, sums
from query_api.projections.sales_brand_running import outlet_brand_running_rollup
from query_api.projections.sales_monthly import outlet_month_rollup
from query_api.projections.sales_rollups import LOCK_FOR_SALES
from query_api.projections.sales_running import outlet_running_rollup
from sellthrough_runtime.app import Job
from sellthrough_runtime.applier import ASYNCHRONOUS_COMMIT, TRANSIENT_ERRORS

log = logging.getLogger(__name__)

FOLD_SECONDS = Histogram(
    "sellthrough_sales_fold_seconds", "Time of one fold of queued order lines into the sales rollups."
)
FOLD_LINES = Histogram(
    "sellthrough_sales_fold_lines",
    "Queued rows folded into the sales rollups per fold.",
    buckets=(0, 10, 100, 1_000, 5_000, 20_000, 50_000, 100_000),
)

# The rollups of the rows taken off the queue (`new_lines`): per (outlet, day), per (day, distributor), per (day,
# distributor, brand) and per (day, distributor, SKU), under the outlet's distributor and the SKU's brand known
# now (sales_rollups.py moves them when that changes), and per (outlet, month) and the outlets' running totals last
# (sales_monthly.py, sales_running.py: keyed by outlet, nothing ever moves them). Each row looks its outlet and SKU
# up once (`placed_lines`): the three distributor rollups group that, rather than joining outlets once per rollup.
ROLLUPS = f"""
by_outlet AS (
    INSERT INTO sales_outlet_daily (outlet_id, day, {column_list()})
    SELECT outlet_id, day, {sums()} FROM new_lines GROUP BY outlet_id, day
    ON CONFLICT (outlet_id, day) DO UPDATE SET {accumulate("sales_outlet_daily")}
), placed_lines AS (
    SELECT b.day, o.distributor_id AS placed_distributor_id, k.brand, b.sku_id, {column_list("b.")}
    FROM new_lines b
    LEFT JOIN outlets o ON o.outlet_id = b.outlet_id
    LEFT JOIN skus k ON k.sku_id = b.sku_id
), placed AS (
    SELECT day, placed_distributor_id AS distributor_id, brand, {sums()}
    FROM placed_lines GROUP BY day, placed_distributor_id, brand
), by_brand AS (
    INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, {column_list()})
    SELECT * FROM placed
    ON CONFLICT ON CONSTRAINT sales_distributor_brand_daily_key DO UPDATE
    SET {accumulate("sales_distributor_brand_daily")}
), by_distributor AS (
    INSERT INTO sales_distributor_daily (day, distributor_id, {column_list()})
    SELECT day, distributor_id, {sums()} FROM placed GROUP BY day, distributor_id
    ON CONFLICT ON CONSTRAINT sales_distributor_daily_key DO UPDATE SET {accumulate("sales_distributor_daily")}
), by_sku AS (
    INSERT INTO sales_distributor_sku_daily (day, distributor_id, sku_id, {column_list()})
    SELECT day, placed_distributor_id, sku_id, {sums()}
    FROM placed_lines
    GROUP BY day, placed_distributor_id, sku_id
    ON CONFLICT ON CONSTRAINT sales_distributor_sku_daily_key DO UPDATE
    SET {accumulate("sales_distributor_sku_daily")}
), {outlet_month_rollup("new_lines")}, {outlet_running_rollup("new_lines")},
{outlet_brand_running_rollup("new_lines")}"""  # noqa: S608 (names from figures.measures, fixed at import)

# Shared rollup lock first (as every writer of the rollups takes it first: a reference change holds it exclusive
# and then folds), then the fold's own lock, so that folds take turns and never deadlock with a reference change.
_ANY_QUEUED = "SELECT EXISTS (SELECT FROM sales_lines_unfolded)"
_LOCK_FOR_FOLD = "SELECT pg_advisory_xact_lock(hashtext('query-api:sales-fold'))"
# At most $1 queued rows (NULL: all of them), by physical position: the queue has no key, and any order will do.
_FOLD = f"""
WITH new_lines AS (
    DELETE FROM sales_lines_unfolded
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM sales_lines_unfolded LIMIT $1))
    RETURNING *
), {ROLLUPS}
SELECT count(*) FROM new_lines
"""  # noqa: S608 (names from figures.measures, fixed at import)


async def fold(conn: asyncpg.Connection, max_lines: int | None = None) -> int:
    """Fold up to `max_lines` queued rows (None: all) into the rollups, inside the caller's transaction; the rows
    folded. The caller holds the rollup lock exclusively (a reference change) or gets it shared here."""
    await conn.execute(LOCK_FOR_SALES)
    # Nothing queued, nothing planned: a rebuild's bulk loader drops the rollups' keys the fold's ON CONFLICT
    # names until its `finish`, while reference changes (which fold first) are applied through the live path.
    if not await conn.fetchval(_ANY_QUEUED):
        return 0
    await conn.execute(_LOCK_FOR_FOLD)
    folded: int = await conn.fetchval(_FOLD, max_lines)
    return folded


async def fold_once(pool: asyncpg.Pool, max_lines: int, *, synchronous_commit: bool = True) -> int:
    """One fold in a transaction of its own; the rows folded. Without `synchronous_commit` a crash may lose the
    fold's commit (and every later one): its rows are then in the queue again, never in both places."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        if not synchronous_commit:
            await conn.execute(ASYNCHRONOUS_COMMIT)
        folded = await fold(conn, max_lines)
    FOLD_SECONDS.observe(time.perf_counter() - started)
    FOLD_LINES.observe(folded)
    return folded


def fold_job(pool: asyncpg.Pool, interval: float, max_lines: int, *, synchronous_commit: bool = True) -> Job:
    """Fold every `interval` seconds; at once again while a fold took a full `max_lines` (a backlog). A database
    outage is waited out: the queue keeps its rows and reads keep adding them."""

    async def run() -> None:
        while True:
            try:
                folded = await fold_once(pool, max_lines, synchronous_commit=synchronous_commit)
            except TRANSIENT_ERRORS as error:
                log.warning("sales fold failed, retrying", extra={"error": repr(error)})
                folded = 0
            if folded < max_lines:
                await asyncio.sleep(interval)

    return run
