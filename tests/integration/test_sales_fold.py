"""The sales fold (query_api.projections.sales_fold): order lines queued by the consumer's transaction reach the
rollups exactly once, whenever the fold runs, and reads (the `*_now` views) are exact before it runs.

The queue is folded by DELETE ... RETURNING, which sees only committed rows: a batch that commits after a fold
began (a later position in the log than rows already folded, or an earlier one) is folded by the next, never
skipped, which a fold cursor over a sequence would do to a transaction that took its numbers early and committed
late."""

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from query_api.figures.measures import NAMES
from query_api.main import MIGRATIONS
from query_api.main import SCHEMA as QUERY_API_SCHEMA
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.projections.sales import prepare_sales, write_sales
from query_api.projections.sales_fold import fold, fold_job
from query_api.reads.sales import _DRILL_OUTLET_BRAND_RUNNING_SQL, _DRILL_SQL, DrillQuery, Level, drill
from query_api.settings import QueryApiSettings
from sellthrough_runtime.applier import BatchApplier
from tests.conftest import Infra
from tests.integration.test_net_sales import (
    BRAND,
    FIRST_DAY,
    OUTLETS,
    SKUS,
    TABLES,
    at,
    reference,
    summed_rows,
    table_rows,
)
from tests.support.brand import event
from tests.support.brand_running import brand_running_differences
from tests.support.replay import as_records, pool_on_own_loop

_KEYS = {
    "sales_outlet_daily": "day, outlet_id",
    "sales_distributor_daily": "day, distributor_id",
    "sales_distributor_brand_daily": "day, distributor_id, brand",
    "sales_distributor_sku_daily": "day, distributor_id, sku_id",
}
# Each rollup as a regrouping of every line appended to sales_lines: what it must hold once folded.
_FROM_LINES = {
    "sales_outlet_daily": "SELECT s.day, s.outlet_id, {sums} FROM sales_lines s GROUP BY 1, 2",
    "sales_distributor_daily": "SELECT s.day, o.distributor_id, {sums} FROM sales_lines s "
    "LEFT JOIN outlets o USING (outlet_id) GROUP BY 1, 2",
    "sales_distributor_brand_daily": "SELECT s.day, o.distributor_id, k.brand, {sums} FROM sales_lines s "
    "LEFT JOIN outlets o USING (outlet_id) LEFT JOIN skus k USING (sku_id) GROUP BY 1, 2, 3",
    "sales_distributor_sku_daily": "SELECT s.day, o.distributor_id, s.sku_id, {sums} FROM sales_lines s "
    "LEFT JOIN outlets o USING (outlet_id) GROUP BY 1, 2, 3",
}


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    with pool_on_own_loop(infra.database_url, QUERY_API_SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


_numbers = itertools.count()


def orders(count: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(count):
        n = next(_numbers)
        payload = {
            "order_id": f"FOLD-{n}",
            "outlet_id": OUTLETS[n % len(OUTLETS)],
            "distributor_id": "D1",
            "rep_id": "REP-1",
            "lines": [{"sku_id": sku, "quantity": 1 + (n + i) % 4, "unit_price": "2.50"} for i, sku in enumerate(SKUS)],
        }
        events.append(event("OrderCaptured", payload, actor="REP-1", occurred_at=at(n % 5)))
    return events


def skus() -> list[dict[str, Any]]:
    return [
        event("SkuRegistered", {"sku_id": s, "name": s, "brand": BRAND[s], "category": "c", "list_price": "2.50"})
        for s in SKUS
    ]


# Rows left in either queue: the fold's, and the running totals' (migration 0030).
_QUEUED = "SELECT (SELECT count(*) FROM sales_lines_unfolded) + (SELECT count(*) FROM sales_outlet_running_unfolded)"
# Each outlet's running totals against its days in sales_outlet_daily: last day, days with sales, net lines.
_TOTALS = "SELECT outlet_id, day, days, lines FROM sales_outlet_totals"
_TOTALS_FROM_DAYS = "SELECT outlet_id, max(day), count(*), sum(lines) FROM sales_outlet_daily GROUP BY outlet_id"


async def as_read(conn: asyncpg.Connection) -> dict[str, Any]:
    return {rollup: await summed_rows(conn, f"{rollup}_now", keys) for rollup, keys in _KEYS.items()}


async def from_lines(conn: asyncpg.Connection) -> dict[str, Any]:
    sums = ", ".join(f"sum(s.{name}) AS {name}" for name in NAMES)
    found = {}
    for rollup, statement in _FROM_LINES.items():
        await conn.execute(f"CREATE TEMP VIEW expected_{rollup} AS {statement.format(sums=sums)}")
        found[rollup] = await table_rows(conn, f"expected_{rollup}", _KEYS[rollup])
        await conn.execute(f"DROP VIEW expected_{rollup}")
    return found


async def folded(conn: asyncpg.Connection) -> dict[str, Any]:
    return {rollup: await table_rows(conn, rollup, keys) for rollup, keys in _KEYS.items()}


def test_a_batch_committing_after_a_fold_began_is_folded_later_never_lost(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    handler = projection_handler(QueryApiSettings())
    applier = BatchApplier(
        pool=pool, group_id=f"fold-{uuid.uuid4().hex[:8]}", handler=handler, wanted_types=PROJECTION_TYPES
    )

    async def run() -> dict[str, Any]:
        await pool.execute(f"TRUNCATE {TABLES}")
        await applier.apply_batch(as_records([*reference(), *skus()], 0))
        await applier.apply_batch(as_records(orders(2), 1000))  # committed (and its month's partition made)
        results: dict[str, Any] = {}
        async with pool.acquire() as early, pool.acquire() as other:
            # A batch's sales written (lines appended and queued) but not yet committed...
            transaction = early.transaction()
            await transaction.start()
            events = [handler.decode_event(orjson.dumps(e)) for e in orders(4)]
            await write_sales(early, prepare_sales(events, handler.zone))
            # ...while a later one commits and a fold runs: it folds the committed batches only, without waiting.
            await applier.apply_batch(as_records(orders(3), 2000))
            async with other.transaction():
                results["folded_while_open"] = await asyncio.wait_for(fold(other), 10)
            results["queued_while_open"] = await other.fetchval("SELECT count(*) FROM sales_lines_unfolded")
            await transaction.commit()
            results["read_before_fold"] = await as_read(other)
            results["expected"] = await from_lines(other)
            async with other.transaction():
                results["folded_after"] = await fold(other, 5)  # a fold of at most 5 rows leaves the rest queued
            results["read_between_folds"] = await as_read(other)
            async with other.transaction():
                results["folded_last"] = await fold(other)
            results["queued_at_end"] = await other.fetchval("SELECT count(*) FROM sales_lines_unfolded")
            results["rollups"] = await folded(other)
        return results

    found = loop.run_until_complete(run())
    assert found["folded_while_open"] == (2 + 3) * len(SKUS)
    assert found["queued_while_open"] == 0  # the open transaction's rows are invisible, not folded
    assert found["folded_after"] == 5
    assert found["folded_last"] == 4 * len(SKUS) - 5
    assert found["queued_at_end"] == 0
    assert found["expected"]["sales_distributor_daily"]  # something to compare
    for name in ("read_before_fold", "read_between_folds", "rollups"):
        assert found[name] == found["expected"], name


def test_the_fold_job_empties_the_queue_and_a_reference_change_folds_first(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    """The job folds on its own; an outlet re-homed while its lines are queued moves them exactly once."""
    loop, pool = loop_and_pool
    applier = BatchApplier(
        pool=pool,
        group_id=f"fold-{uuid.uuid4().hex[:8]}",
        handler=projection_handler(QueryApiSettings()),
        wanted_types=PROJECTION_TYPES,
    )
    rehome = event(
        "OutletRegistered",
        {
            "outlet_id": OUTLETS[0],
            "name": "Shop moved",
            "distributor_id": "D2",
            "channel": "grocery",
            "outlet_class": "A",
            "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
        },
        occurred_at=at(9),
    )
    d2 = event("DistributorRegistered", {"distributor_id": "D2", "name": "Dist 2", "region_id": "R1"})

    async def run() -> dict[str, Any]:
        await pool.execute(f"TRUNCATE {TABLES}")
        await applier.apply_batch(as_records([*reference(), *skus(), d2], 0))
        await applier.apply_batch(as_records(orders(6), 1000))
        await applier.apply_batch(as_records([rehome], 2000))  # with the orders' lines still queued
        results: dict[str, Any] = {}
        async with pool.acquire() as conn:
            results["expected"] = await from_lines(conn)
            results["read"] = await as_read(conn)
        await applier.apply_batch(as_records(orders(6), 3000))
        # The running totals' queue is moved every 0.3 s, not with every fold: the job must empty it too.
        job: asyncio.Future[None] = asyncio.ensure_future(fold_job(pool, 0.05, 7, running_interval=0.3)())
        try:
            for _ in range(200):
                if await pool.fetchval(_QUEUED) == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        async with pool.acquire() as conn:
            results["queued"] = await conn.fetchval(_QUEUED)
            results["expected_after"] = await from_lines(conn)
            results["rollups"] = await folded(conn)
            results["totals"] = {tuple(r) for r in await conn.fetch(_TOTALS)}
            results["totals_from_days"] = {tuple(r) for r in await conn.fetch(_TOTALS_FROM_DAYS)}
            results["brand_running_differences"] = await brand_running_differences(conn)
        return results

    found = loop.run_until_complete(run())
    assert found["read"] == found["expected"]
    assert {key[1] for key in found["expected"]["sales_distributor_daily"]} == {"D1", "D2"}
    assert found["queued"] == 0
    assert found["rollups"] == found["expected_after"]
    assert found["totals"] == found["totals_from_days"] != set()
    assert found["brand_running_differences"] == []


# The lines of each brand: queued for the running totals (migration 0032), and as sales_lines has them.
_QUEUED_BY_BRAND = "SELECT brand, sum(rows)::int FROM sales_outlet_running_unfolded GROUP BY brand"
_LINES_BY_BRAND = "SELECT k.brand, count(*)::int FROM sales_lines s JOIN skus k USING (sku_id) GROUP BY k.brand"


def test_the_brand_running_totals_move_with_the_running_queue_and_reads_add_it(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    """A fold queues its lines per (outlet, brand, day) and leaves the running totals per (brand, outlet) alone
    (migration 0032); the brand read adds the queue, and the move adds it to the tables once."""
    loop, pool = loop_and_pool
    applier = BatchApplier(
        pool=pool,
        group_id=f"fold-{uuid.uuid4().hex[:8]}",
        handler=projection_handler(QueryApiSettings()),
        wanted_types=PROJECTION_TYPES,
    )
    queries = [
        DrillQuery(Level.OUTLET, None, FIRST_DAY, FIRST_DAY + timedelta(days=last), brand)
        for brand in sorted(set(BRAND.values()))
        for last in (1, 4)
    ]

    async def reads(conn: asyncpg.Connection) -> list[tuple[Any, Any]]:
        return [
            (
                await drill(conn, q, statement=_DRILL_OUTLET_BRAND_RUNNING_SQL),
                await drill(conn, q, statement=_DRILL_SQL),
            )
            for q in queries
        ]

    async def run() -> dict[str, Any]:
        await pool.execute(f"TRUNCATE {TABLES}")
        await applier.apply_batch(as_records([*reference(), *skus()], 0))
        await applier.apply_batch(as_records(orders(5), 1000))
        results: dict[str, Any] = {}
        async with pool.acquire() as conn:
            async with conn.transaction():
                await fold(conn, running=False)
            results["pairs_after_fold"] = await conn.fetchval("SELECT count(*) FROM sales_outlet_brand_totals")
            results["queued_by_brand"] = dict(await conn.fetch(_QUEUED_BY_BRAND))
            results["lines_by_brand"] = dict(await conn.fetch(_LINES_BY_BRAND))
            results["read_queued"] = await reads(conn)
            await applier.apply_batch(as_records(orders(4), 2000))  # a second fold's lines join the queue
            async with conn.transaction():
                await fold(conn, running=False)
            async with conn.transaction():
                await fold(conn)
            results["queued_after"] = await conn.fetchval(_QUEUED)
            results["read_folded"] = await reads(conn)
            results["differences"] = await brand_running_differences(conn)
        return results

    found = loop.run_until_complete(run())
    assert found["pairs_after_fold"] == 0
    assert found["queued_by_brand"] == found["lines_by_brand"] == {"Tea": 10, "Biscuits": 5}
    assert found["queued_after"] == 0
    for name in ("read_queued", "read_folded"):
        assert all(a == b and a.rows for a, b in found[name]), name
    assert found["differences"] == []
