"""The consumer through a PostgreSQL outage that begins where it reads its stored offsets rather than where it
applies a batch: on partition assignment, and in the middle of a quiet-partition check. It must wait for the
database and go on from where it was: nothing lost, nothing applied twice, and no crash (a crashed consumer job
is restarted by its supervisor, with its prefetched batch and recovery state lost). Its own PostgreSQL server,
stopped and started again; the module's broker."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sellthrough_contracts import encode_event
from sellthrough_contracts.topics import Topic
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_producer
from tests.conftest import Infra
from tests.integration.test_exactly_once_consumer import (
    SESSION_TIMEOUT_MS,
    applications,
    counting_handler,
    publish_in_one_batch,
    quicker_recovery,  # noqa: F401 - a fixture, used by name
    stamped,
    store_position,
)
from tests.support.brand import order
from tests.support.private_postgres import private_postgres
from tests.support.waiting import eventually

SCHEMA = "consumer_outage"
OUTAGE_SECONDS = 3.0
NEVER_SEEN_SECONDS = 30.0
T = TypeVar("T")
RETRYING = "database unavailable, retrying"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with private_postgres("sellthrough-consumer-outage-pg-") as server:
        yield server


@pytest.fixture(scope="module")
async def pool(own_postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncpg.Pool]:
    migrations: Path = tmp_path_factory.mktemp("migrations")
    (migrations / "0001.applications.sql").write_text("CREATE TABLE applications (event_id uuid NOT NULL);")
    await migrate(own_postgres.url, SCHEMA, migrations)
    pool = await create_pool(own_postgres.url, SCHEMA, connect_timeout=2.0, acquire_timeout=3.0)
    yield pool
    await pool.close()


@pytest.fixture(autouse=True)
async def empty_applications(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE applications")


@pytest.fixture
async def topic(infra: Infra, request: pytest.FixtureRequest) -> str:
    name = f"test.{request.node.name[:80]}"
    await ensure_topics(infra.kafka_bootstrap_servers, (Topic(name, 1, frozenset({"OrderCaptured"}), "test"),))
    return name


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
    await producer.start()
    yield producer
    await producer.stop()


class Outage:
    """Stops the module's PostgreSQL (ending every session, as a restart or failover does) and starts it again
    OUTAGE_SECONDS after the consumer was seen waiting for it to read its stored offsets (or, if it never is,
    after NEVER_SEEN_SECONDS: the test then fails on what the consumer did instead)."""

    def __init__(self, server: EmbeddedPostgres, caplog: pytest.LogCaptureFixture) -> None:
        self._server = server
        self._caplog = caplog
        self.over: asyncio.Task[None] | None = None

    async def begin(self) -> None:
        await asyncio.to_thread(self._server.stop, "fast")
        self.over = asyncio.create_task(self._end_later())

    async def _end_later(self) -> None:
        with contextlib.suppress(AssertionError):
            await eventually(lambda: _now(self.waited_for()), bool, timeout=NEVER_SEEN_SECONDS)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(self._server.start)

    def waited_for(self) -> list[logging.LogRecord]:
        """The consumer's warnings that it waits for the database to read its stored offsets."""
        return [
            r
            for r in self._caplog.records
            if r.getMessage() == RETRYING and getattr(r, "waiting", None) == "stored offsets not read"
        ]

    async def ended(self) -> None:
        assert self.over is not None, "the outage never began"
        await asyncio.wait_for(asyncio.shield(self.over), NEVER_SEEN_SECONDS + 30)


@contextlib.asynccontextmanager
async def outage(server: EmbeddedPostgres, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Outage]:
    """Whatever the test does, the server runs again when it ends (the next test needs it)."""
    caplog.set_level(logging.WARNING, logger="sellthrough_runtime.consumer")
    cut = Outage(server, caplog)
    try:
        yield cut
    finally:
        if cut.over is not None:
            await cut.over


@contextlib.asynccontextmanager
async def running(
    kafka: AIOKafkaConsumer, pool: asyncpg.Pool, group: str, topic: str
) -> AsyncIterator["asyncio.Task[None]"]:
    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=kafka,
        group_id=group,
        topics=[topic],
        handler=counting_handler,
        wanted_types=frozenset({"OrderCaptured"}),
        batch_max=50,
        starved_after_seconds=2.0,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def kafka_client(infra: Infra, group: str, cls: type[AIOKafkaConsumer] = AIOKafkaConsumer) -> AIOKafkaConsumer:
    """As make_consumer builds it (no offsets committed to Kafka, earliest reset), with the short group session of
    test_exactly_once_consumer.py (Tansu answers a join after half a session)."""
    return cls(
        bootstrap_servers=infra.kafka_bootstrap_servers,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        rebalance_timeout_ms=2000,
    )


async def applied_while_running(task: "asyncio.Task[None]", pool: asyncpg.Pool, count: int) -> list[uuid.UUID]:
    """The applications once there are `count`, then a second more (time for any applied twice to show); fails at
    once if the consumer stopped."""

    async def probe() -> list[uuid.UUID]:
        if task.done():
            raise RuntimeError(f"the consumer stopped: {task.exception()!r}")
        return await applications(pool)

    await eventually(probe, lambda applied: len(applied) >= count, timeout=60, what=f"{count} applications")
    await asyncio.sleep(1.0)
    applied = await probe()
    return applied


async def test_an_assignment_during_an_outage_waits_for_the_stored_offsets(
    infra: Infra,
    pool: asyncpg.Pool,
    own_postgres: EmbeddedPostgres,
    producer: AIOKafkaProducer,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records 0..4 were applied before (the stored offset says so; their ids are not in processed_events, so a
    re-read from the start would apply them again and show here). aiokafka swallows an error in the assignment
    callback and leaves the partition to its offset reset: the read must wait for the database instead."""
    events = [stamped(order("O1", [("S1", i + 1)])) for i in range(10)]
    records = await publish_in_one_batch(producer, topic, events)
    await store_position(pool, "assigned-in-outage", records[4], "{}")

    async with outage(own_postgres, caplog) as cut:
        await cut.begin()
        async with running(kafka_client(infra, "assigned-in-outage"), pool, "assigned-in-outage", topic) as task:
            await cut.ended()
            applied = await applied_while_running(task, pool, 5)

    assert sorted(applied) == sorted(e.event_id for e in events[5:]), "resumed after the stored offset"
    assert cut.waited_for(), "the assignment met the outage"


class StopsPostgresWhenAskedForEnds(AIOKafkaConsumer):  # type: ignore[misc]
    """A client that, once armed, begins the outage the moment it is asked where partitions end: in the middle of
    the quiet-partition check, between the two reads that check makes."""

    cut: Outage | None = None

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self.cut is not None:
            cut, self.cut = self.cut, None
            await cut.begin()
        ends: dict[TopicPartition, int] = await super().end_offsets(partitions)
        return ends


@pytest.mark.usefixtures("quicker_recovery")
async def test_a_quiet_partition_read_again_during_an_outage_waits_and_goes_on(
    infra: Infra,
    pool: asyncpg.Pool,
    own_postgres: EmbeddedPostgres,
    producer: AIOKafkaProducer,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A partition delivers nothing while records wait (paused in the client, as in the starvation tests of
    test_exactly_once_consumer.py); when the consumer checks it, the database goes away."""
    tp = TopicPartition(topic, 0)
    first = [stamped(order("O1", [("S1", i + 1)])) for i in range(5)]
    second = [stamped(order("O1", [("S2", i + 1)])) for i in range(5)]
    for event in first:
        await producer.send_and_wait(topic, encode_event(event), key=b"k", partition=0)
    kafka = kafka_client(infra, "quiet-in-outage", StopsPostgresWhenAskedForEnds)

    async with (
        outage(own_postgres, caplog) as cut,
        running(kafka, pool, "quiet-in-outage", topic) as task,
    ):
        await applied_while_running(task, pool, 5)
        kafka.pause(tp)
        for event in second:
            await producer.send_and_wait(topic, encode_event(event), key=b"k", partition=0)
        kafka.cut = cut  # armed: the next quiet-partition check meets the outage
        await eventually(lambda: _now(cut.over), lambda over: over is not None, timeout=40, what="the check")
        await cut.ended()
        applied = await applied_while_running(task, pool, 10)

    assert sorted(applied) == sorted(e.event_id for e in first + second)
    assert cut.waited_for(), "the check met the outage"


async def _now(value: T) -> T:
    return value
