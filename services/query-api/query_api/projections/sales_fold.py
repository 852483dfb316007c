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
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import Histogram

from query_api.figures.measures import accumulate, column_list, sums
from query_api.projections.sales_rollups import LOCK_FOR_SALES
from query_api.projections.sales_running import ANY_QUEUED_FOR_RUNNING, FOLD_RUNNING, queue_for_running
from sellthrough_runtime.applier import ASYNCHRONOUS_COMMIT, TRANSIENT_ERRORS

if TYPE_CHECKING:
    # The web stack's module: imported for the type only, so a rebuild (which imports this through the registry)
    # does not load FastAPI and uvicorn.
    from sellthrough_runtime.app import Job

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
# now (sales_rollups.py moves them when that changes); the rows are queued per (outlet, day, brand) for the running
# totals per outlet and per (brand, outlet), which the fold moves less often (sales_running.py, migrations 0030 and
# 0032). Each row looks its outlet and SKU up once (`placed_lines`): the other rollups group that, rather than
# joining outlets once per rollup, and the per (outlet, day) rows are grouped from the queued ones.
ROLLUPS = f"""
placed_lines AS (
    SELECT b.outlet_id, b.day, o.distributor_id AS placed_distributor_id, k.brand, b.sku_id, {column_list("b.")}
    FROM new_lines b
    LEFT JOIN outlets o ON o.outlet_id = b.outlet_id
    LEFT JOIN skus k ON k.sku_id = b.sku_id
), running_lines AS (
    SELECT outlet_id, day, brand, count(*) AS rows, {sums()} FROM placed_lines GROUP BY outlet_id, day, brand
), outlet_days AS (
    SELECT outlet_id, day, {sums()} FROM running_lines GROUP BY outlet_id, day
), by_outlet AS (
    INSERT INTO sales_outlet_daily (outlet_id, day, {column_list()})
    SELECT * FROM outlet_days
    ON CONFLICT (outlet_id, day) DO UPDATE SET {accumulate("sales_outlet_daily")}
    -- Whether this statement created the (outlet, day) row (xmax 0: inserted, not updated), for the running totals'
    -- count of days with sales: the probe of the row a NOT EXISTS would make, taken from the upsert itself.
    RETURNING outlet_id, day, xmax = 0 AS created
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
), {queue_for_running("running_lines", "by_outlet")}"""  # noqa: S608 (names from figures.measures, fixed at import)

# Shared rollup lock first (as every writer of the rollups takes it first: a reference change holds it exclusive
# and then folds), then the fold's own lock, so that folds take turns and never deadlock with a reference change.
_ANY_QUEUED = f"SELECT EXISTS (SELECT FROM sales_lines_unfolded), ({ANY_QUEUED_FOR_RUNNING})"  # noqa: S608 (a constant)
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


async def fold(conn: asyncpg.Connection, max_lines: int | None = None, *, running: bool = True) -> int:
    """Fold up to `max_lines` queued rows (None: all) into the rollups, inside the caller's transaction, and with
    `running` then the running totals' whole queue (the outlets' and the brands', sales_running.py); the rows
    folded from sales_lines_unfolded. The caller holds the rollup lock exclusively (a reference change) or gets it
    shared here."""
    await conn.execute(LOCK_FOR_SALES)
    # Nothing queued, nothing planned: a rebuild's bulk loader drops the rollups' keys the fold's ON CONFLICT
    # names until its `finish`, while reference changes (which fold first) are applied through the live path.
    queued, queued_for_running = await conn.fetchrow(_ANY_QUEUED)
    if not (queued or (running and queued_for_running)):
        return 0
    await conn.execute(_LOCK_FOR_FOLD)
    folded: int = await conn.fetchval(_FOLD, max_lines) if queued else 0
    if running:
        # After the fold above, in the same transaction: what it queued is moved too (reads add either queue).
        await conn.execute(FOLD_RUNNING)
    return folded


async def fold_once(
    pool: asyncpg.Pool, max_lines: int, *, synchronous_commit: bool = True, running: bool = True
) -> int:
    """One fold in a transaction of its own; the rows folded. Without `synchronous_commit` a crash may lose the
    fold's commit (and every later one): its rows are then in the queue again, never in both places."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        if not synchronous_commit:
            await conn.execute(ASYNCHRONOUS_COMMIT)
        folded = await fold(conn, max_lines, running=running)
    FOLD_SECONDS.observe(time.perf_counter() - started)
    FOLD_LINES.observe(folded)
    return folded


def fold_job(
    pool: asyncpg.Pool,
    interval: float,
    max_lines: int,
    *,
    synchronous_commit: bool = True,
    running_interval: float = 2.0,
) -> "Job":
    """Fold every `interval` seconds; at once again while a fold took a full `max_lines` (a backlog); the running
    totals' queue with the first fold after each `running_interval` seconds (rewriting an outlet's running rows once
    for all its lines of the interval). A database outage is waited out: the queues keep their rows and reads keep
    adding them."""

    async def run() -> None:
        running_at = time.monotonic()
        while True:
            running = time.monotonic() >= running_at
            try:
                folded = await fold_once(pool, max_lines, synchronous_commit=synchronous_commit, running=running)
            except TRANSIENT_ERRORS as error:
                log.warning("sales fold failed, retrying", extra={"error": repr(error)})
                folded = 0
            else:
                if running:
                    running_at = time.monotonic() + running_interval
            if folded < max_lines:
                await asyncio.sleep(interval)

    return run
