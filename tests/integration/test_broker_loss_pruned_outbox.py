"""A broker that loses its data while the outbox holds only its retention window: the relay republishes once, and
only the rows kept; a consumer that applied everything before the loss applies each event exactly once, the
pruned ones (no longer anywhere but in its projection) included. Real Postgres, a Tansu broker of its own
(killed and restarted, memory storage) and the real relay and consumer."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from sellthrough_contracts import Envelope, parse_event
from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.processes import free_port
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_consumer
from sellthrough_runtime.outbox import OutboxRelay, append_to_outbox
from sellthrough_runtime.retention import Retention, outbox_rule
from tests.conftest import Infra
from tests.support.brand import order
from tests.support.waiting import eventually

SCHEMA = "pruned_loss"
TOPIC = "sellthrough.trade.v1"
OUTLETS = ["O1", "O2", "O3", "O4", "O5"]  # several keys, so several partitions


async def record_applications(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Every application, without any uniqueness: a double apply shows as two rows."""
    await conn.executemany("INSERT INTO applications (event_id) VALUES ($1)", [(e.event_id,) for e in events])


@pytest.fixture
async def pool(infra: Infra, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001.applications.sql").write_text("CREATE TABLE applications (event_id uuid NOT NULL);")
    await migrate(infra.database_url, SCHEMA, migrations)
    pool = await create_pool(infra.database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.stop()


async def queue(pool: asyncpg.Pool, count: int) -> list[Envelope]:
    events = [parse_event(order(OUTLETS[i % 5], [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
    return events


async def applications(pool: asyncpg.Pool) -> list[uuid.UUID]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applications")]


async def recovered(pool: asyncpg.Pool) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT generation, read_back_pending, "
        "(SELECT count(*) FROM outbox WHERE seq > published_through) AS unpublished "
        "FROM outbox_generation, outbox_progress"
    )


async def event_ids_in_topic(bootstrap_servers: str) -> list[str]:
    reader = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await reader.start()
    try:
        ids: list[str] = []
        while fetched := await reader.getmany(timeout_ms=1500):
            ids += [dict(r.headers)["event_id"].decode() for records in fetched.values() for r in records]
        return ids
    finally:
        await reader.stop()


@contextlib.asynccontextmanager
async def running(job: asyncio.Future[None] | asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job


async def test_one_loss_republishes_once_only_the_rows_kept_and_nothing_is_applied_twice_or_lost(
    pool: asyncpg.Pool, broker: EmbeddedBroker
) -> None:
    servers = broker.bootstrap_servers
    await ensure_topics(servers)
    relay = OutboxRelay(pool, servers, "pruned-loss", retention_check_seconds=1.0)
    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=make_consumer(servers, "pruned-loss", "pruned-loss"),
        group_id="pruned-loss",
        topics=[TOPIC],
        handler=record_applications,
        wanted_types=frozenset({"OrderCaptured"}),
        batch_max=50,
    )
    old = await queue(pool, 20)
    kept = await queue(pool, 10)
    async with running(asyncio.create_task(relay.run())), running(asyncio.create_task(consumer.run())):
        await eventually(lambda: applications(pool), lambda a: len(a) == 30, timeout=60, what="all 30 applied")
        generation = (await recovered(pool))["generation"]

        # The 20 oldest rows are past the window, so pruned: only the consumer's projection holds them now.
        await pool.execute("UPDATE outbox SET created_at = now() - interval '8 days' WHERE seq <= 20")
        assert await Retention(pool, "pruned-loss", [outbox_rule(timedelta(days=7))]).prune_once() == {"outbox": 20}

        broker.kill()
        await asyncio.to_thread(broker.start)
        new = await queue(pool, 10)
        relay.wake()
        state = await eventually(
            lambda: recovered(pool),
            lambda r: r["generation"] > generation and not r["read_back_pending"] and r["unpublished"] == 0,
            timeout=120,
            what="the republish published and read back",
        )
        await eventually(lambda: applications(pool), lambda a: len(a) >= 40, timeout=120, what="new events applied")
        await asyncio.sleep(2.0)  # time for a double application to show
        applied = await applications(pool)

    assert state["generation"] == generation + 1, "one loss, one republish"
    assert sorted(applied) == sorted(e.event_id for e in old + kept + new), "each event applied exactly once"
    in_topic = set(await event_ids_in_topic(servers))
    assert {str(e.event_id) for e in kept + new} <= in_topic
    assert not {str(e.event_id) for e in old} & in_topic, "pruned rows are not republished"
