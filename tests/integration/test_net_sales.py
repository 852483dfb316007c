"""Property: net secondary sales are a function of the set of events, not of their arrival order.

Random histories of orders, cancellations (some before their order), deliveries (some sent twice, some of SKUs
the order did not list), retailer and company returns, and SKU prices that change, are applied through query-api's
real projection handler in a random order and random batches, with events redelivered. Every sales row and rollup
must equal an independent recomputation from the history itself.
"""

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import query_api
from query_api.figures.measures import NAMES
from query_api.main import SCHEMA as QUERY_API_SCHEMA
from query_api.projections.dimensions import DIMENSIONS
from query_api.projections.handler import projection_handler
from query_api.projections.kpis import KPIS
from query_api.projections.registry import PROJECTION_TYPES
from query_api.projections.sales import SALES
from query_api.projections.sales_fold import fold
from query_api.settings import QueryApiSettings
from sellthrough_runtime.applier import BatchApplier
from tests.conftest import Infra
from tests.support.brand import event
from tests.support.brand_running import brand_running_differences
from tests.support.replay import as_records, pool_on_own_loop

MIGRATIONS = Path(query_api.__file__).parent / "migrations"
OUTLETS = ("O1", "O2", "O3")
SKUS = ("S1", "S2", "S3")
BRAND = {"S1": "Tea", "S2": "Tea", "S3": "Biscuits"}
REPS = ("REP-1", "REP-2")
PRICES = ("1.00", "2.50", "3.75")
FIRST_DAY = date(2026, 6, 1)
TABLES = (
    "sales_lines, sales_lines_unfolded, sales_outlet_daily, sales_outlet_running_unfolded, sales_outlet_running, "
    "sales_outlet_totals, sales_outlet_brand_running, sales_outlet_brand_totals, sales_distributor_daily, "
    "sales_distributor_brand_daily, "
    "sales_distributor_sku_daily, sales_orders, "
    "sales_cancellations, sales_deliveries, sales_delivery_lines, sales_returns, "
    "sales_return_lines, outlets, skus, zones, regions, distributors, kpi_orders_daily, kpi_visits_daily"
)


@dataclass
class Order:
    order_id: str
    outlet: str
    rep: str
    day: int
    lines: list[tuple[str, int, str]]
    cancelled: bool
    deliveries: list[list[tuple[str, int]]]


@dataclass
class Return:
    return_id: str
    outlet: str
    day: int
    reason: str
    from_retailer: bool
    lines: list[tuple[str, int]]


@dataclass
class History:
    orders: list[Order]
    returns: list[Return]
    prices: dict[str, list[str]]
    """Each SKU's list prices in registration order: the last one is current."""
    events: list[dict[str, Any]] = field(default_factory=list)


def at(day: int, hour: int = 10) -> datetime:
    return datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=hour)


@st.composite
def histories(draw: st.DrawFn) -> History:
    n = itertools.count()
    orders = [
        Order(
            f"ORD-{next(n)}",
            draw(st.sampled_from(OUTLETS)),
            draw(st.sampled_from(REPS)),
            draw(st.integers(0, 3)),
            draw(
                st.lists(
                    st.tuples(st.sampled_from(SKUS), st.integers(1, 9), st.sampled_from(PRICES)), min_size=1, max_size=3
                )
            ),
            draw(st.booleans()),
            draw(
                st.lists(
                    st.lists(st.tuples(st.sampled_from(SKUS), st.integers(0, 9)), min_size=1, max_size=2), max_size=2
                )
            ),
        )
        for _ in range(draw(st.integers(1, 6)))
    ]
    returns = [
        Return(
            f"RET-{next(n)}",
            draw(st.sampled_from(OUTLETS)),
            draw(st.integers(0, 5)),
            draw(st.sampled_from(("damaged", "expired", "unsold"))),
            draw(st.booleans()),
            draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 9)), min_size=1, max_size=2)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    prices = {sku: draw(st.lists(st.sampled_from(PRICES), min_size=1, max_size=2)) for sku in SKUS}
    history = History(orders, returns, prices)
    history.events = draw(st.permutations(events_of(history)))
    # Redeliveries of the same records, and orders, deliveries etc. sent again under a new event id (the first of an
    # order id wins: the bulk path must not write the lines of the second).
    repeats = draw(st.lists(st.sampled_from(history.events), max_size=3))
    resent = [
        {**e, "event_id": str(uuid.uuid4())}
        for e in draw(st.lists(st.sampled_from(history.events), max_size=2))
        if e["event_type"] in ("OrderCaptured", "OrderDelivered", "OrderCancelled", "ReturnRecorded")
    ]
    for extra in [*repeats, *resent]:
        history.events.insert(draw(st.integers(0, len(history.events))), extra)
    return history


def events_of(history: History) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    payload: dict[str, Any]
    for sku, prices in history.prices.items():
        for minute, price in enumerate(prices):
            payload = {"sku_id": sku, "name": sku, "brand": BRAND[sku], "category": "c", "list_price": price}
            events.append(event("SkuRegistered", payload, occurred_at=at(0, 1) + timedelta(minutes=minute)))
    for o in history.orders:
        placed: dict[str, Any] = {
            "order_id": o.order_id,
            "outlet_id": o.outlet,
            "distributor_id": "D1",
            "rep_id": o.rep,
            "lines": [{"sku_id": s, "quantity": q, "unit_price": p} for s, q, p in o.lines],
        }
        events.append(event("OrderCaptured", placed, actor=o.rep, occurred_at=at(o.day)))
        ids: dict[str, Any] = {"order_id": o.order_id, "outlet_id": o.outlet, "distributor_id": "D1"}
        if o.cancelled:
            events.append(event("OrderCancelled", {**ids, "reason": "shop closed"}, occurred_at=at(o.day, 12)))
        for i, lines in enumerate(o.deliveries):
            payload = {
                **ids,
                "delivery_id": f"DLV-{o.order_id}-{i}",
                "lines": [{"sku_id": s, "quantity": q} for s, q in lines],
            }
            events.append(event("OrderDelivered", payload, occurred_at=at(o.day + 1)))
    for r in history.returns:
        payload = {
            "return_id": r.return_id,
            "distributor_id": "D1",
            "outlet_id": r.outlet if r.from_retailer else None,
            "direction": "from_retailer" if r.from_retailer else "to_company",
            "reason": r.reason,
            "lines": [{"sku_id": s, "quantity": q} for s, q in r.lines],
        }
        events.append(event("ReturnRecorded", payload, occurred_at=at(r.day, 15)))
    return events


def expected_rows(history: History) -> dict[tuple[date, str, str, str], dict[str, Any]]:
    """The sales rows recomputed from the history's facts, without the projection's code."""
    rows: dict[tuple[date, str, str, str], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(NAMES, 0))
    for o in history.orders:
        day = FIRST_DAY + timedelta(days=o.day)
        effectively_cancelled = o.cancelled and not o.deliveries
        for sku, quantity, price in o.lines:
            row = rows[(day, o.outlet, sku, o.rep)]
            value = Decimal(price) * quantity
            row["ordered_units"] += quantity
            row["ordered_value"] += value
            if effectively_cancelled:
                row["cancelled_units"] += quantity
                row["cancelled_value"] += value
            else:
                row["units"] += quantity
                row["value"] += value
                row["lines"] += 1
        for lines in o.deliveries:
            for sku, quantity in lines:
                rows[(day, o.outlet, sku, o.rep)]["delivered_units"] += quantity
    for r in history.returns:
        if not r.from_retailer:
            continue
        day = FIRST_DAY + timedelta(days=r.day)
        for sku, quantity in r.lines:
            row = rows[(day, r.outlet, sku, "")]
            value = Decimal(history.prices[sku][-1]) * quantity
            row["returned_units"] += quantity
            row[f"returned_{r.reason}_units"] += quantity
            row["returned_value"] += value
            row["units"] -= quantity
            row["value"] -= value
    return {key: row for key, row in rows.items() if any(row.values())}


def reference() -> list[dict[str, Any]]:
    events = [
        event("GeographyDefined", {"geo_id": "Z1", "level": "zone", "name": "North", "parent_id": None}),
        event("GeographyDefined", {"geo_id": "R1", "level": "region", "name": "Delhi", "parent_id": "Z1"}),
        event("DistributorRegistered", {"distributor_id": "D1", "name": "Dist 1", "region_id": "R1"}),
    ]
    for outlet in OUTLETS:
        payload = {
            "outlet_id": outlet,
            "name": f"Shop {outlet}",
            "distributor_id": "D1",
            "channel": "grocery",
            "outlet_class": "A",
            "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
        }
        events.append(event("OutletRegistered", payload, occurred_at=at(0, 0)))
    return events


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    with pool_on_own_loop(infra.database_url, QUERY_API_SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


def regrouped(rows: dict[tuple[Any, ...], dict[str, Any]], key_of: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    grouped: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(NAMES, 0))
    for key, row in rows.items():
        target = grouped[key_of(key)]
        for name in NAMES:
            target[name] += row[name]
    return {key: row for key, row in grouped.items() if any(row.values())}


async def table_rows(conn: asyncpg.Connection, table: str, keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    records = await conn.fetch(f"SELECT {keys}, {', '.join(NAMES)} FROM {table}")
    width = len(keys.split(","))
    found = {tuple(r.values())[:width]: {name: r[name] for name in NAMES} for r in records}
    return {key: row for key, row in found.items() if any(row.values())}


async def summed_rows(conn: asyncpg.Connection, view: str, keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A rollup as reads see it (its `_now` view: folded rows and queued lines, several rows per key)."""
    sums = ", ".join(f"sum({name}) AS {name}" for name in NAMES)
    records = await conn.fetch(f"SELECT {keys}, {sums} FROM {view} GROUP BY {keys}")
    width = len(keys.split(","))
    found = {tuple(r.values())[:width]: {name: r[name] for name in NAMES} for r in records}
    return {key: row for key, row in found.items() if any(row.values())}


_ROLLUP_KEYS = {
    "sales_outlet_daily": "day, outlet_id",
    "sales_distributor_daily": "day, distributor_id",
    "sales_distributor_brand_daily": "day, distributor_id, brand",
    "sales_distributor_sku_daily": "day, distributor_id, sku_id",
}


def running_totals(
    daily: dict[tuple[Any, ...], dict[str, Any]],
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], dict[tuple[Any, ...], dict[str, Any]]]:
    """sales_outlet_running and sales_outlet_totals (migration 0027) recomputed from sales_outlet_daily's rows (every
    one, even all-zero: each counts as a day with sales): per outlet, a row for every day from its first to its
    last, its figures summed up to that day, and its last."""
    running: dict[tuple[Any, ...], dict[str, Any]] = {}
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for outlet in {o for _, o in daily}:
        days = sorted(d for d, o in daily if o == outlet)
        summed: dict[str, Any] = {"days": 0, **dict.fromkeys(NAMES, 0)}
        day = days[0]
        while day <= days[-1]:
            if (day, outlet) in daily:
                summed["days"] += 1
                for name in NAMES:
                    summed[name] += daily[(day, outlet)][name]
            running[(day, outlet)] = dict(summed)
            day += timedelta(days=1)
        totals[(days[-1], outlet)] = dict(summed)
    return running, totals


async def all_rows(conn: asyncpg.Connection, table: str, keys: str, names: tuple[str, ...] = NAMES) -> Any:
    """Every row of a table by its keys, all-zero ones too."""
    records = await conn.fetch(f"SELECT {keys}, {', '.join(names)} FROM {table}")
    width = len(keys.split(","))
    return {tuple(r.values())[:width]: {name: r[name] for name in names} for r in records}


async def fold_all(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await fold(conn)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), batch_size=st.integers(1, 7))
def test_every_sales_row_and_rollup_equals_a_recomputation_whatever_the_arrival_order(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool], history: History, batch_size: int
) -> None:
    loop, pool = loop_and_pool
    applier = BatchApplier(
        pool=pool,
        group_id=f"net-{uuid.uuid4().hex[:8]}",
        handler=projection_handler(QueryApiSettings()),
        wanted_types=PROJECTION_TYPES,
    )
    expected = expected_rows(history)

    async def run() -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
        await pool.execute(f"TRUNCATE {TABLES}")
        offsets = itertools.count(step=1000)
        await applier.apply_batch(as_records(reference(), next(offsets)))
        events = history.events
        found: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        for number, start in enumerate(range(0, len(events), batch_size)):
            records = as_records(events[start : start + batch_size], next(offsets))
            await applier.apply_batch(records)
            if number % 3 == 1:  # folds between batches, as the fold job's would land
                await fold_all(pool)
        async with pool.acquire() as conn:
            # As reads see them before the queue is folded (the `_now` views), then the rollups once it is.
            for rollup, keys in _ROLLUP_KEYS.items():
                found[f"{rollup}_now"] = await summed_rows(conn, f"{rollup}_now", keys)
        await fold_all(pool)
        async with pool.acquire() as conn:
            return found | {
                "queued": {(n,): {} for n in [await conn.fetchval("SELECT count(*) FROM sales_lines_unfolded")] if n},
                "sales_daily": await table_rows(conn, "sales_daily", "day, outlet_id, sku_id, rep_id"),
                **{rollup: await table_rows(conn, rollup, keys) for rollup, keys in _ROLLUP_KEYS.items()},
                "dead_letters": {(r["reason"],): {} for r in await conn.fetch("SELECT reason FROM dead_letters")},
                "daily_every_row": await all_rows(conn, "sales_outlet_daily", "day, outlet_id"),
                "sales_outlet_running": await all_rows(
                    conn, "sales_outlet_running", "day, outlet_id", ("days", *NAMES)
                ),
                "sales_outlet_totals": await all_rows(conn, "sales_outlet_totals", "day, outlet_id", ("days", *NAMES)),
                "brand_running_differences": {(d,): {} for d in await brand_running_differences(conn)},
            }

    found = loop.run_until_complete(run())
    assert found["dead_letters"] == {}
    assert found["sales_daily"] == expected
    assert found["sales_outlet_daily"] == regrouped(expected, lambda k: (k[0], k[1]))
    assert found["sales_distributor_daily"] == regrouped(expected, lambda k: (k[0], "D1"))
    assert found["sales_distributor_brand_daily"] == regrouped(expected, lambda k: (k[0], "D1", BRAND[k[2]]))
    assert found["sales_distributor_sku_daily"] == regrouped(expected, lambda k: (k[0], "D1", k[2]))
    assert found["queued"] == {}
    # The running totals, kept by the fold (late lines, gaps, folds between batches), against the daily rollup.
    running, totals = running_totals(found["daily_every_row"])
    assert found["sales_outlet_running"] == running
    assert found["sales_outlet_totals"] == totals
    # Running totals per (brand, outlet), returns and cancellations among the lines.
    assert found["brand_running_differences"] == {}
    for rollup in _ROLLUP_KEYS:
        assert found[f"{rollup}_now"] == found[rollup], rollup


_SALES_FACTS = (
    "sales_orders",
    "sales_cancellations",
    "sales_deliveries",
    "sales_delivery_lines",
    "sales_returns",
    "sales_return_lines",
)
# The fact table's figures per document, kind and cell: the live path may append several compensating rows where
# the bulk path appends their sum (a cancellation taken back by a delivery nets to nothing), and revalues a
# return where the bulk path values it once at the price known at the end.
_LINE_FIGURES = f"""
SELECT distributor_id, document_id, CASE kind WHEN 'revalue' THEN 'return' ELSE kind END AS kind, day, outlet_id,
       sku_id, rep_id, sum(cancel_mark) AS cancel_mark, {", ".join(f"sum({name}) AS {name}" for name in NAMES)}
FROM sales_lines GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
_ORDER_SKUS = """
SELECT o.distributor_id, o.order_id, s.* FROM sales_orders o
CROSS JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s
"""
_INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename LIKE 'sales%'
"""


async def _sales_state(conn: asyncpg.Connection) -> dict[str, Any]:
    """Everything the sales projection leaves, in a form two ways of loading the same log must agree on (the
    live path's queued lines folded first, as the fold job would)."""
    async with conn.transaction():
        await fold(conn)
    state: dict[str, Any] = {
        table: sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {table}")) for table in _SALES_FACTS
    }
    state["sales_daily"] = await table_rows(conn, "sales_daily", "day, outlet_id, sku_id, rep_id")
    for rollup, keys in (
        ("sales_outlet_daily", "day, outlet_id"),
        ("sales_distributor_daily", "day, distributor_id"),
        ("sales_distributor_brand_daily", "day, distributor_id, brand"),
        ("sales_distributor_sku_daily", "day, distributor_id, sku_id"),
    ):
        state[rollup] = await table_rows(conn, rollup, keys)
    for running in ("sales_outlet_running", "sales_outlet_totals"):
        state[running] = await all_rows(conn, running, "day, outlet_id", ("days", *NAMES))
    state["sales_lines"] = sorted(tuple(r) for r in await conn.fetch(_LINE_FIGURES) if any(tuple(r)[7:]))
    state["sales_order_skus"] = sorted(tuple(r) for r in await conn.fetch(_ORDER_SKUS))
    state["indexes"] = sorted(tuple(r) for r in await conn.fetch(_INDEXES))
    state["freshness"] = await conn.fetchrow(
        "SELECT newest_occurred_at, newest_recorded_at FROM projection_freshness WHERE projection = 'sales_daily'"
    )
    # The KPI projection's bulk path (KPIS.bulk) over the same log: its counts and freshness.
    for kpi in ("kpi_orders_daily", "kpi_visits_daily"):
        state[kpi] = sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {kpi}"))
    state["kpi_freshness"] = sorted(
        tuple(r)
        for r in await conn.fetch(
            "SELECT projection, newest_occurred_at, newest_recorded_at FROM projection_freshness "
            "WHERE projection LIKE 'kpi%'"
        )
    )
    return state


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), chunk=st.integers(1, 9))
def test_bulk_loading_a_log_leaves_what_the_live_path_leaves(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool], history: History, chunk: int
) -> None:
    """The rebuild's path (SALES.bulk: COPY into staging, everything derived set-based at the end) against the live
    consumer's, over the same log; reference data goes through its own projection in both."""
    loop, pool = loop_and_pool
    handler = projection_handler(QueryApiSettings())
    log = [*reference(), *history.events]
    loader, kpi_loader = SALES.bulk, KPIS.bulk
    assert loader is not None
    assert kpi_loader is not None

    async def live() -> dict[str, Any]:
        await pool.execute(f"TRUNCATE {TABLES}, projection_freshness")
        applier = BatchApplier(
            pool=pool, group_id=f"live-{uuid.uuid4().hex[:8]}", handler=handler, wanted_types=PROJECTION_TYPES
        )
        await applier.apply_batch(as_records(log, 0))
        async with pool.acquire() as conn:
            return await _sales_state(conn)

    async def bulk() -> dict[str, Any]:
        await pool.execute(f"TRUNCATE {TABLES}, projection_freshness")
        first_copies: dict[str, dict[str, Any]] = {}
        for e in log:
            first_copies.setdefault(e["event_id"], e)
        never_seen = list(first_copies.values())
        events = [handler.decode_event(orjson.dumps(e)) for e in never_seen]
        async with pool.acquire() as conn:
            await loader.start(conn)
            await kpi_loader.start(conn)
            for start in range(0, len(events), chunk):
                part = events[start : start + chunk]
                reference_part = [e for e in part if type(e) in DIMENSIONS.consumes]
                if reference_part:
                    async with conn.transaction():
                        await DIMENSIONS.write(conn, DIMENSIONS.prepare(reference_part, handler.zone))
                await loader.load(conn, part)
                await kpi_loader.load(conn, part)  # events it does not count are skipped, as live
            await loader.finish(conn)
            await kpi_loader.finish(conn)
            return await _sales_state(conn)

    from_live = loop.run_until_complete(live())
    from_bulk = loop.run_until_complete(bulk())
    assert from_live["sales_daily"] == expected_rows(history)
    for name, found in from_live.items():
        assert from_bulk[name] == found, name
