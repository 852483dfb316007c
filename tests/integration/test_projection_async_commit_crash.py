"""query-api's projection consumer and sales fold commit asynchronously (synchronous_commit off in their
transactions): a PostgreSQL crash may lose the last commits they were told succeeded. The claim is that exactly-once
still holds, because the lost commits are a suffix, whole and in WAL order, offsets together with the state they
describe, and the consumer reads again from the offsets that survived (docs/architecture.md). This kills the
server's processes with SIGKILL mid-stream (a crash: WAL not yet written from shared memory is gone), starts it
again under the same running consumer, and checks the projection holds every order exactly once.

Its own durable PostgreSQL (fsync and synchronous commit on, as in production: only the code's SET LOCAL makes
these commits asynchronous), with the WAL writer slowed so that a crash is likely to lose some; the session's
broker."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from query_api.main import MIGRATIONS
from query_api.main import SCHEMA as QUERY_API_SCHEMA
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.projections.sales_fold import fold, fold_job
from query_api.settings import QueryApiSettings
from sellthrough_contracts import Envelope, encode_event
from sellthrough_contracts.topics import Topic
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_producer
from tests.conftest import Infra
from tests.integration.test_exactly_once_consumer import SESSION_TIMEOUT_MS, stamped
from tests.support.brand import OUTLETS, SKUS, order, reference_events
from tests.support.private_postgres import private_postgres
from tests.support.waiting import eventually

GROUP = "async-commit-crash"
ORDERS = 3000
CRASH_AFTER = 1000


@pytest.fixture(scope="module")
def durable_postgres() -> Iterator[EmbeddedPostgres]:
    with private_postgres("sellthrough-async-commit-crash-", durable=True) as server:
        yield server


def crash(server: EmbeddedPostgres) -> None:
    """SIGKILL the postmaster and every process of the server at once: no shutdown, no WAL flush."""
    postmaster = psutil.Process(int((server.data_dir / "postmaster.pid").read_text().split()[0]))
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


async def slow_wal_writer(url: str) -> None:
    """Asynchronous commits wait for the WAL writer, which now wakes every 10 s, not when WAL piles up: a crash
    loses whatever of the last seconds' WAL is still in shared memory (up to wal_buffers)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
        await conn.execute("ALTER SYSTEM SET wal_writer_flush_after = '1GB'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture
async def pool(durable_postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    await migrate(durable_postgres.url, QUERY_API_SCHEMA, MIGRATIONS)
    await slow_wal_writer(durable_postgres.url)
    pool = await create_pool(durable_postgres.url, QUERY_API_SCHEMA, connect_timeout=2.0, acquire_timeout=3.0)
    yield pool
    await pool.close()


async def publish(producer: AIOKafkaProducer, topic: str, events: list[Envelope]) -> None:
    sent = [await producer.send(topic, encode_event(e), key=e.partition_key().encode(), headers=[]) for e in events]
    await asyncio.gather(*sent)


async def count(pool: asyncpg.Pool, sql: str) -> int:
    with contextlib.suppress(*_DOWN):
        return int(await pool.fetchval(sql) or 0)
    return -1


_DOWN = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


async def test_a_crash_that_loses_asynchronous_commits_loses_and_doubles_nothing(
    infra: Infra, pool: asyncpg.Pool, durable_postgres: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sellthrough_runtime.consumer")
    settings = QueryApiSettings()
    handler = projection_handler(settings)
    reference = [stamped(e) for e in reference_events()]
    await BatchApplier(pool=pool, group_id="reference", handler=handler, wanted_types=PROJECTION_TYPES).apply_batch(
        [
            ConsumerRecord("reference", 0, i, 0, 0, b"k", encode_event(e), None, 1, 1, [])
            for i, e in enumerate(reference)
        ]
    )
    topic = "test.async-commit-crash"
    await ensure_topics(infra.kafka_bootstrap_servers, (Topic(topic, 3, frozenset({"OrderCaptured"}), "test"),))
    outlets, skus = list(OUTLETS), list(SKUS)
    day = datetime.now(UTC) - timedelta(hours=1)
    orders = [
        stamped(
            order(
                outlets[n % len(outlets)],
                [(skus[n % len(skus)], 1 + n % 3), (skus[(n + 1) % len(skus)], 2)],
                occurred_at=day - timedelta(days=n % 40),
            )
        )
        for n in range(ORDERS)
    ]
    captured = [cast(OrderCaptured, o) for o in orders]
    lines = sum(len(o.payload.lines) for o in captured)
    units = sum(line.quantity for o in captured for line in o.payload.lines)
    producer = make_producer(infra.kafka_bootstrap_servers, "async-commit-crash")
    await producer.start()
    try:
        await publish(producer, topic, orders)
    finally:
        await producer.stop()

    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=AIOKafkaConsumer(
            bootstrap_servers=infra.kafka_bootstrap_servers,
            group_id=GROUP,
            client_id=GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=64 * 1024,
            session_timeout_ms=SESSION_TIMEOUT_MS,  # Tansu answers a join after half a session
            rebalance_timeout_ms=2000,
        ),
        group_id=GROUP,
        topics=[topic],
        handler=handler,
        wanted_types=PROJECTION_TYPES,
        batch_max=50,  # many small commits, so the crash has recent ones to lose
        synchronous_commit=False,
        parallel_transactions=2,  # as query-api runs it: parts of a batch commit (and are lost) independently
    )
    applied = "SELECT count(*) FROM processed_events WHERE group_id = 'async-commit-crash'"
    stored = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = 'async-commit-crash'"
    running = asyncio.create_task(consumer.run())
    folding = asyncio.ensure_future(fold_job(pool, 0.05, 2000, synchronous_commit=False)())
    try:
        await eventually(lambda: count(pool, applied), lambda n: n >= CRASH_AFTER, timeout=120, what="orders applied")
        before = await count(pool, stored)
        await asyncio.to_thread(crash, durable_postgres)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(durable_postgres.start)
        after = await count(pool, stored)
        await eventually(lambda: count(pool, applied), lambda n: n >= ORDERS, timeout=180, what="every order applied")
        await asyncio.sleep(1.0)  # time for anything applied twice to show
        assert not running.done(), running.exception()
    finally:
        for task in (running, folding):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_DOWN):
                await task
    async with pool.acquire() as conn, conn.transaction():
        while await fold(conn, None):
            pass

    assert await count(pool, applied) == ORDERS
    assert await count(pool, "SELECT count(*) FROM sales_orders") == ORDERS
    assert await count(pool, "SELECT sum(lines) FROM sales_lines") == lines, "every line appended exactly once"
    assert await count(pool, "SELECT sum(units) FROM sales_lines") == units
    assert await count(pool, "SELECT sum(lines) FROM sales_distributor_daily") == lines, "folded exactly once"
    assert await count(pool, "SELECT sum(lines) FROM sales_outlet_daily") == lines
    assert await count(pool, "SELECT count(*) FROM sales_lines_unfolded") == 0
    assert await count(pool, "SELECT sum(orders) FROM kpi_orders_daily") == ORDERS, "KPIs count each order once"
    # The crash did lose commits the consumer had been told succeeded (the WAL writer held them), else this test
    # would prove nothing; the consumer noticed and read again from what survived.
    assert after < before, f"stored offsets before the crash {before}, after {after}: no commit was lost"
    assert any("positioning again from the stored offsets" in r.getMessage() for r in caplog.records)
