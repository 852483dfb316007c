"""Property: the drill-down's rollup statements give exactly the rows of the statement over the (day, outlet,
SKU) cube, whatever the reference data does meanwhile: outlets and SKUs registered after their first sales,
outlets re-homed to another distributor, SKUs re-branded, older reference events arriving late (ignored)."""

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import query_api
from query_api.main import SCHEMA as QUERY_API_SCHEMA
from query_api.projections.dimensions import DIMENSIONS
from query_api.projections.handler import projection_handler
from query_api.projections.sales_fold import fold
from query_api.reads.sales import (
    _DRILL_BY_OUTLET_RUNNING_SQL,
    _DRILL_OUTLET_BRAND_RUNNING_SQL,
    _DRILL_OUTLET_LINES_SQL,
    _DRILL_SQL,
    DrillQuery,
    Level,
    drill,
    drill_statement,
)
from query_api.settings import QueryApiSettings
from sellthrough_contracts import type_names
from sellthrough_runtime.applier import BatchApplier
from tests.conftest import Infra
from tests.support.brand import event
from tests.support.brand_running import brand_running_differences
from tests.support.replay import as_records, pool_on_own_loop

SCHEMA = QUERY_API_SCHEMA
MIGRATIONS = Path(query_api.__file__).parent / "migrations"
# The statements that read the running totals and add their queue (migrations 0030 and 0032).
_READ_RUNNING = (_DRILL_BY_OUTLET_RUNNING_SQL, _DRILL_OUTLET_BRAND_RUNNING_SQL)
OUTLETS = ("O1", "O2", "O3", "O4")
SKUS = ("S1", "S2", "S3")
DISTRIBUTORS = ("D1", "D2", "D3")  # D3 is never registered: its outlets' sales have no region
BRANDS = ("Tea", "Biscuits")
FIRST_DAY = date(2026, 6, 1)
ORDER_DAYS = (0, 1, 2, 3, 29, 30, 31, 45, 61)
"""Days after FIRST_DAY orders fall on: within June, both sides of the month's end, mid-July and 1 August, so the
ranges below span whole months and partial ones at their ends."""
MASTERS_AT = datetime(2026, 6, 1, tzinfo=UTC)

outlet_changes = st.tuples(
    st.just("outlet"), st.sampled_from(OUTLETS), st.sampled_from(DISTRIBUTORS), st.integers(0, 30)
)
sku_changes = st.tuples(st.just("sku"), st.sampled_from(SKUS), st.sampled_from(BRANDS), st.integers(0, 30))
orders = st.tuples(
    st.just("order"),
    st.sampled_from(OUTLETS),
    st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 9)), min_size=1, max_size=3),
    st.sampled_from(ORDER_DAYS),
)
batches = st.lists(st.lists(st.one_of(orders, orders, outlet_changes, sku_changes), min_size=1, max_size=6), max_size=8)


def geography() -> list[dict[str, Any]]:
    return [
        event("GeographyDefined", {"geo_id": "Z1", "level": "zone", "name": "North", "parent_id": None}),
        event("GeographyDefined", {"geo_id": "R1", "level": "region", "name": "Delhi", "parent_id": "Z1"}),
        event("GeographyDefined", {"geo_id": "R2", "level": "region", "name": "Punjab", "parent_id": "Z1"}),
        event("DistributorRegistered", {"distributor_id": "D1", "name": "Dist 1", "region_id": "R1"}),
        event("DistributorRegistered", {"distributor_id": "D2", "name": "Dist 2", "region_id": "R2"}),
    ]


def as_event(step: tuple[Any, ...]) -> dict[str, Any]:
    kind = step[0]
    if kind == "outlet":
        _, outlet, distributor, minute = step
        payload = {
            "outlet_id": outlet,
            "name": f"Shop {outlet}",
            "distributor_id": distributor,
            "channel": "grocery",
            "outlet_class": "A",
            "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
        }
        return event("OutletRegistered", payload, occurred_at=MASTERS_AT + timedelta(minutes=minute))
    if kind == "sku":
        _, sku, brand, minute = step
        payload = {"sku_id": sku, "name": f"Item {sku}", "brand": brand, "category": "c", "list_price": "1.00"}
        return event("SkuRegistered", payload, occurred_at=MASTERS_AT + timedelta(minutes=minute))
    _, outlet, lines, day = step
    payload = {
        "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
        "outlet_id": outlet,
        "distributor_id": "D1",
        "rep_id": "REP-1",
        "visit_id": None,
        "gps": {"lat": 28.6, "lon": 77.2, "accuracy_m": 12.0},
        "lines": [{"sku_id": s, "quantity": q, "unit_price": "2.25"} for s, q in lines],
    }
    at = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=10)
    return event("OrderCaptured", payload, actor="REP-1", occurred_at=at)


RANGES = (
    (FIRST_DAY, FIRST_DAY + timedelta(days=3)),
    (FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=1)),
    (FIRST_DAY + timedelta(days=1), date(2026, 8, 1)),  # June 2-30, July whole, 1 August
    (FIRST_DAY, date(2026, 7, 31)),  # two whole months
    (date(2026, 6, 30), date(2026, 7, 1)),  # no whole month, across a month's end
    # Running totals (sales_outlet_running): both ends inside an outlet's days; before its first and after its last.
    (FIRST_DAY + timedelta(days=2), FIRST_DAY + timedelta(days=30)),
    (date(2026, 5, 20), date(2026, 9, 1)),
)


def queries() -> Iterator[DrillQuery]:
    parents: dict[Level, list[str | None]] = {
        Level.NATIONAL: [None],
        Level.ZONE: [None],
        Level.REGION: [None, "Z1"],
        Level.DISTRIBUTOR: [None, "R1", "R2"],
        Level.OUTLET: [None, *DISTRIBUTORS],
    }
    for level, level_parents in parents.items():
        filters = [(None, None), *((brand, None) for brand in BRANDS), (None, SKUS[0])]
        for parent, (brand, sku), (start, end) in itertools.product(level_parents, filters, RANGES):
            yield DrillQuery(level, parent, start, max(start, end), brand, sku)


async def fold_all(pool: asyncpg.Pool, *, running: bool = True) -> None:
    """Every queued line folded; without `running`, left queued for the outlets' running totals (migration 0030), as
    the fold job leaves them between their moves."""
    async with pool.acquire() as conn, conn.transaction():
        await fold(conn, running=running)


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    # Hypothesis drives a synchronous test; the database work runs on a loop of its own.
    with pool_on_own_loop(infra.database_url, SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


# Every query twice (queued, then folded; the outlet statement thrice) over seven ranges: ~4 minutes on a busy
# 2-core box, so more than the default 300 s are allowed.
@pytest.mark.timeout(900)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=batches)
def test_rollup_statements_answer_like_the_cube(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool], steps: list[list[tuple[Any, ...]]]
) -> None:
    loop, pool = loop_and_pool
    applier = BatchApplier(
        pool=pool,
        group_id=f"rollups-{uuid.uuid4().hex[:8]}",
        handler=projection_handler(QueryApiSettings()),
        wanted_types=type_names(DIMENSIONS.consumes) | {"OrderCaptured"},
    )
    offsets = itertools.count(step=1000)  # first offset of each batch

    async def run() -> tuple[int, list[tuple[DrillQuery, Any, Any]]]:
        await pool.execute(
            "TRUNCATE sales_lines, sales_lines_unfolded, sales_outlet_daily,"
            " sales_outlet_running, sales_outlet_totals, sales_outlet_running_unfolded,"
            " sales_outlet_brand_running, sales_outlet_brand_totals,"
            " sales_distributor_daily,"
            " sales_distributor_brand_daily, sales_distributor_sku_daily,"
            " outlets, skus, zones, regions, distributors"
        )
        await applier.apply_batch(as_records(geography(), next(offsets)))
        for number, batch in enumerate(steps):
            await applier.apply_batch(as_records([as_event(step) for step in batch], next(offsets)))
            if number % 2 == 1:  # some lines folded into the rollups, later ones queued (as the fold job leaves them)
                # Every other fold leaves its lines queued for the running totals: one move takes several folds'.
                await fold_all(pool, running=number % 4 == 3)
        applied_lines = await pool.fetchval("SELECT coalesce(sum(lines), 0) FROM sales_daily")
        differences = []
        # Then with the lines folded but queued for the running totals, then with both queues folded: every read
        # from the rollups alone.
        for state in ("queued", "queued_for_running", "folded"):
            if state != "queued":
                await fold_all(pool, running=state == "folded")
            async with pool.acquire() as conn:
                for query in queries():
                    # Only the outlet statements read the running totals (and their queue): per outlet, and per
                    # (brand, outlet) with a brand filter (migration 0032: on the same queue and interval).
                    if state == "queued_for_running" and drill_statement(query) not in _READ_RUNNING:
                        continue
                    from_rollup = await drill(conn, query)
                    from_cube = await drill(conn, query, statement=_DRILL_SQL)
                    if from_rollup != from_cube:
                        differences.append((query, from_rollup, from_cube))
                if state == "folded":  # the running totals per (brand, outlet) equal the lines, re-brands and all
                    differences += await brand_running_differences(conn)
        return applied_lines, differences

    applied_lines, differences = loop.run_until_complete(run())
    assert applied_lines == sum(len(step[2]) for batch in steps for step in batch if step[0] == "order"), (
        "every order line is in the cube (none dead-lettered)"
    )
    assert differences == []


def test_rollups_serve_every_query_without_a_sku_filter() -> None:
    """The property above compares what the service reads with the statement over every line; this pins which
    queries read the range's lines of the SKUs asked for (summed per outlet): only a SKU filter at outlet level
    across distributors (a brand alone reads the running totals per brand and outlet, at any outlet level). None
    reads the lines placed one by one (line_drill_sql: the reference)."""
    for q in queries():
        every_line = q.level is Level.OUTLET and q.parent_id is None and q.sku_id is not None
        assert (drill_statement(q) == _DRILL_OUTLET_LINES_SQL) == every_line, q
        by_brand = q.level is Level.OUTLET and q.brand is not None and q.sku_id is None
        assert (drill_statement(q) == _DRILL_OUTLET_BRAND_RUNNING_SQL) == by_brand, q
        assert drill_statement(q) != _DRILL_SQL, q


def test_reference_changes_applied_beside_orders_by_another_member_keep_the_rollups_exact(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    """Two members of the projection group (query-api runs two; instances scale out) apply at the same time: one
    re-homes outlets and re-brands SKUs while the other adds those outlets' and SKUs' sales."""
    loop, pool = loop_and_pool
    rng = random.Random(5)
    reference = [
        [
            as_event(("outlet", rng.choice(OUTLETS), rng.choice(DISTRIBUTORS), minute)),
            as_event(("sku", rng.choice(SKUS), rng.choice(BRANDS), minute)),
        ]
        for minute in range(1, 81)
    ]
    orders = [
        [as_event(("order", rng.choice(OUTLETS), [(rng.choice(SKUS), rng.randint(1, 9))], rng.choice(ORDER_DAYS)))]
        for _ in range(160)
    ]

    def member() -> BatchApplier:
        return BatchApplier(
            pool=pool,
            group_id=f"member-{uuid.uuid4().hex[:8]}",
            handler=projection_handler(QueryApiSettings()),
            wanted_types=type_names(DIMENSIONS.consumes) | {"OrderCaptured"},
        )

    async def run() -> list[tuple[DrillQuery, Any, Any]]:
        await pool.execute(
            "TRUNCATE sales_lines, sales_lines_unfolded, sales_outlet_daily,"
            " sales_outlet_running, sales_outlet_totals, sales_outlet_running_unfolded,"
            " sales_outlet_brand_running, sales_outlet_brand_totals,"
            " sales_distributor_daily,"
            " sales_distributor_brand_daily, sales_distributor_sku_daily,"
            " outlets, skus, zones, regions, distributors"
        )
        offsets = itertools.count(step=1000)
        reference_member, order_member = member(), member()
        await reference_member.apply_batch(as_records(geography(), next(offsets)))

        async def apply_all(applier: BatchApplier, batches: list[list[dict[str, Any]]]) -> None:
            for batch in batches:
                await applier.apply_batch(as_records(batch, next(offsets)))

        await asyncio.gather(apply_all(reference_member, reference), apply_all(order_member, orders))
        async with pool.acquire() as conn:
            differences: list[Any] = [
                (query, from_rollup, from_cube)
                for query in queries()
                if (from_rollup := await drill(conn, query))
                != (from_cube := await drill(conn, query, statement=_DRILL_SQL))
            ]
        await fold_all(pool)
        async with pool.acquire() as conn:
            return differences + await brand_running_differences(conn)

    assert loop.run_until_complete(run()) == []
