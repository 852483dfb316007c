"""The rebuild's bulk path against real Postgres and Tansu: a projection with a BulkLoader is started once, loaded
per batch inside the batch's transaction and finished once, never written through its live steps; a projection
without one is written as live; both end up in the swapped-in schema with the offsets to continue from."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from query_api.jobs.rebuild.run import Options, rebuild
from query_api.projections import sales_bulk
from query_api.projections.base import Projection
from query_api.projections.dimensions import DIMENSIONS
from query_api.settings import QueryApiSettings
from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_contracts.topics import REFERENCE, TRADE
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_runtime.kafka import make_producer
from tests.conftest import Infra
from tests.support.brand import order, reference_events

ORDERS = 23


class OrderIdsInBulk:
    """A BulkLoader that COPYs each order's id, noting the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def start(self, conn: asyncpg.Connection) -> None:
        self.calls.append("start")
        await conn.execute("CREATE TABLE IF NOT EXISTS bulk_orders (event_id uuid PRIMARY KEY)")

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        self.calls.append("load")
        await conn.copy_records_to_table("bulk_orders", records=[(e.event_id,) for e in events])

    async def finish(self, conn: asyncpg.Connection) -> None:
        self.calls.append("finish")
        await conn.execute("CREATE INDEX IF NOT EXISTS bulk_orders_built_after ON bulk_orders (event_id)")


def _not_live(*_args: object) -> Any:
    raise AssertionError("a bulk-loaded projection is not written through its live steps")


async def _not_live_write(*_args: object) -> None:
    raise AssertionError("a bulk-loaded projection is not written through its live steps")


def stamped(raw: dict[str, Any]) -> Envelope:
    return parse_event(raw).stamped(datetime.now(UTC))


@pytest.fixture
def settings(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> QueryApiSettings:
    monkeypatch.setenv("DATABASE_URL", infra.database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", infra.kafka_bootstrap_servers)
    return QueryApiSettings()


async def _produce(infra: Infra, masters: list[Any], orders: list[Any]) -> None:
    """The reference events onto their topic, then the orders onto the trade topic, each acknowledged."""
    producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
    await producer.start()
    try:
        for topic, events in ((REFERENCE.name, masters), (TRADE.name, orders)):
            for event in events:
                await producer.send_and_wait(topic, encode_event(event), key=event.partition_key().encode())
    finally:
        await producer.stop()


async def test_bulk_and_live_projections_rebuild_into_the_swapped_schema(
    infra: Infra, settings: QueryApiSettings
) -> None:
    masters = [stamped(e) for e in reference_events()]
    orders = [stamped(order("O1", [("S1", i + 1)])) for i in range(ORDERS)]
    await _produce(infra, masters, orders)

    loader = OrderIdsInBulk()
    in_bulk = Projection[Any]("orders-in-bulk", (OrderCaptured,), _not_live, _not_live_write, bulk=loader)
    outcome = await rebuild(settings, Options(projections=(DIMENSIONS, in_bulk), batch_records=5, terminal=False))

    assert outcome.swapped
    assert outcome.dead_letters == 0
    assert outcome.records == len(masters) + len(orders)
    assert loader.calls[0] == "start"
    assert loader.calls[-1] == "finish"
    assert loader.calls.count("load") >= ORDERS // 5
    assert set(loader.calls[1:-1]) == {"load"}
    conn = await asyncpg.connect(infra.database_url)
    try:
        loaded = await conn.fetch("SELECT event_id FROM query_api.bulk_orders")
        assert sorted(r["event_id"] for r in loaded) == sorted(e.event_id for e in orders)
        assert await conn.fetchval("SELECT count(*) FROM query_api.outlets") == sum(
            e.event_type == "OutletRegistered" for e in masters
        )
        applied = await conn.fetchval("SELECT count(*) FROM query_api.processed_events")
        assert applied == len(masters) + len(orders)
        offsets = await conn.fetch("SELECT topic, sum(next_offset) AS n FROM query_api.consumer_offsets GROUP BY topic")
        assert {r["topic"]: r["n"] for r in offsets} == {REFERENCE.name: len(masters), TRADE.name: len(orders)}
    finally:
        await conn.close()


_SNAPSHOT_TABLES = (
    "sales_lines",
    "sales_orders",
    "sales_outlet_daily",
    "sales_distributor_sku_daily",
    "sales_distributor_brand_daily",
    "sales_distributor_daily",
    "kpi_orders_daily",
)
_ROWS = "SELECT coalesce(string_agg(t::text, ' | ' ORDER BY t::text), '') FROM query_api.{table} t"
_PROCESSED = "SELECT array_agg(event_id ORDER BY event_id) FROM query_api.processed_events"


async def _snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    """The swapped-in schema's sales and KPI rows (as text, in order), its indexes and its tables."""
    found: dict[str, Any] = {}
    for table in _SNAPSHOT_TABLES:
        found[table] = await conn.fetchval(_ROWS.format(table=table))
    found["processed_events"] = await conn.fetchval(_PROCESSED)
    found["indexes"] = [
        tuple(r)
        for r in await conn.fetch(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'query_api' ORDER BY 1, 2"
        )
    ]
    found["tables"] = [
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'query_api' ORDER BY 1")
    ]
    return found


async def test_a_rebuild_that_fails_inside_finish_resumes_to_the_same_schema(
    infra: Infra, settings: QueryApiSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`finish` commits step by step, on several connections: a rebuild that dies between steps (here: one step
    raising while the other branches run) resumes with the steps not done, and swaps in exactly what a rebuild
    that never failed leaves (rows, rollups, indexes, processed ids), with no bookkeeping tables left behind."""
    masters = [stamped(e) for e in reference_events()]
    outlets = ("O1", "O2", "O3", "O4", "O5")
    skus = ("S1", "S2", "S3")
    orders = [stamped(order(outlets[i % 5], [(skus[i % 3], i + 1), (skus[(i + 1) % 3], 2)])) for i in range(ORDERS)]
    await _produce(infra, masters, orders)

    options = Options(batch_records=7, terminal=False)
    assert (await rebuild(settings, options)).swapped
    conn = await asyncpg.connect(infra.database_url)
    try:
        expected = await _snapshot(conn)
        assert expected["sales_lines"] != ""
        assert "sales_bulk_steps" not in expected["tables"]
        assert "bulk_load_finished" not in expected["tables"]

        real_step = sales_bulk._run_step
        ran: list[str] = []

        async def failing_step(c: asyncpg.Connection, step: tuple[str, str], seconds: dict[str, float]) -> None:
            if step[0] == "brand_daily":
                raise RuntimeError("killed between finish steps")
            await real_step(c, step, seconds)
            ran.append(step[0])

        monkeypatch.setattr(sales_bulk, "_run_step", failing_step)
        with pytest.raises(RuntimeError, match="killed between finish steps"):
            await rebuild(settings, Options(batch_records=7, terminal=False, restart=True))
        assert {"lines", "sku_daily"} <= set(ran)
        done = {r["step"] for r in await conn.fetch("SELECT step FROM query_api_rebuild.sales_bulk_steps")}
        assert "lines" in done
        assert "brand_daily" not in done

        monkeypatch.setattr(sales_bulk, "_run_step", real_step)
        assert (await rebuild(settings, Options(batch_records=7, terminal=False, resume=True))).swapped
        assert await _snapshot(conn) == expected
    finally:
        await conn.close()


async def test_an_unswapped_rebuild_resumed_later_applies_what_came_since_through_the_live_steps(
    infra: Infra, settings: QueryApiSettings
) -> None:
    """`--no-swap`, then `--resume` once more orders arrived: the bulk loads are finished by then (their staging
    gone, their tables indexed), so the new orders go through the projections' live steps, none dead-lettered."""
    masters = [stamped(e) for e in reference_events()]
    first = [stamped(order("O1", [("S1", i + 1)])) for i in range(ORDERS)]
    later = [stamped(order("O3", [("S2", i + 2), ("S3", 1)])) for i in range(5)]

    async def send(batches: list[tuple[str, list[Envelope]]]) -> None:
        producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
        await producer.start()
        try:
            for topic, events in batches:
                for event in events:
                    await producer.send_and_wait(topic, encode_event(event), key=event.partition_key().encode())
        finally:
            await producer.stop()

    await send([(REFERENCE.name, masters), (TRADE.name, first)])
    assert not (await rebuild(settings, Options(batch_records=7, terminal=False, swap=False))).swapped
    conn = await asyncpg.connect(infra.database_url)
    try:
        # The module's tests share the broker: the topics hold their orders too, so the later ones are counted apart.
        units_before = await conn.fetchval("SELECT sum(units) FROM query_api_rebuild.sales_lines")
        orders_before = await conn.fetchval("SELECT count(*) FROM query_api_rebuild.sales_orders")
        await send([(TRADE.name, later)])
        outcome = await rebuild(settings, Options(batch_records=7, terminal=False, resume=True))

        assert outcome.swapped
        assert outcome.dead_letters == 0
        assert outcome.records == len(later)
        units = sum(line["quantity"] for e in later for line in e.model_dump()["payload"]["lines"])
        assert await conn.fetchval("SELECT sum(units) FROM query_api.sales_lines") == units_before + units
        assert await conn.fetchval("SELECT count(*) FROM query_api.sales_orders") == orders_before + len(later)
        tables = {
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'query_api'")
        }
        assert not {"bulk_load_finished", "sales_bulk_steps", "sales_bulk_orders"} & tables
    finally:
        await conn.close()
