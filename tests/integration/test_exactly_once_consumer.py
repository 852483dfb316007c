"""The exactly-once consumer loop against the real broker and Postgres: redeliveries, restarts, poison
records, handler failures and a broker that lost its data."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_contracts.topics import Topic
from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.processes import free_port
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_consumer, make_producer
from tests.conftest import Infra
from tests.support.brand import order
from tests.support.waiting import eventually

SCHEMA = "consumer_test"
POISON_SKU = "S3"  # the test handler fails on orders containing it, as a projection bug would


async def counting_handler(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Records every application, without any uniqueness, so a double apply would show as two rows."""
    for event in events:
        if any(line.sku_id == POISON_SKU for line in event.payload.lines):  # type: ignore[attr-defined]
            raise ValueError(f"cannot project order {event.event_id}")
    await conn.executemany("INSERT INTO applications (event_id) VALUES ($1)", [(e.event_id,) for e in events])


@pytest.fixture(scope="module")
async def pool(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncpg.Pool]:
    migrations = tmp_path_factory.mktemp("migrations")
    (migrations / "0001.applications.sql").write_text("CREATE TABLE applications (event_id uuid NOT NULL);")
    await migrate(infra.database_url, SCHEMA, migrations)
    pool = await create_pool(infra.database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(infra: Infra, request: pytest.FixtureRequest) -> str:
    """A topic of its own per test, so a new consumer group reading from the start sees only this test."""
    name = f"test.{request.node.name[:80]}"
    await ensure_topics(infra.kafka_bootstrap_servers, (Topic(name, 3, frozenset({"OrderCaptured"}), "test"),))
    return name


@pytest.fixture(autouse=True)
async def empty_applications(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE applications")


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
    await producer.start()
    yield producer
    await producer.stop()


@contextlib.asynccontextmanager
async def running_consumer(infra: Infra, pool: asyncpg.Pool, group_id: str, topic: str) -> AsyncIterator[None]:
    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=make_consumer(infra.kafka_bootstrap_servers, group_id, group_id),
        group_id=group_id,
        topics=[topic],
        handler=counting_handler,
        wanted_types=frozenset({"OrderCaptured"}),
        batch_max=50,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def stamped(event: dict[str, object]) -> Envelope:
    return parse_event(event).stamped(datetime.now(UTC))


async def publish(producer: AIOKafkaProducer, topic: str, events: Sequence[Envelope]) -> None:
    for event in events:
        await producer.send_and_wait(topic, encode_event(event), key=event.partition_key().encode())


async def applications(pool: asyncpg.Pool) -> list[uuid.UUID]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applications")]


async def test_redelivered_and_duplicated_events_are_applied_once(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    events = [stamped(order("O1", [("S1", i + 1)])) for i in range(20)]
    await publish(producer, topic, events)
    await publish(producer, topic, events[:10])  # the relay republishing after a crash before marking rows sent

    async with running_consumer(infra, pool, "dedupe", topic):
        applied = await eventually(lambda: applications(pool), lambda a: len(a) >= 20, what="20 applications")
        await asyncio.sleep(1.0)  # give any double application time to show up
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in events)


async def test_restart_resumes_from_stored_offsets_without_reapplying(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    first = [stamped(order("O2", [("S2", 1)])) for _ in range(30)]
    second = [stamped(order("O4", [("S1", 1)])) for _ in range(30)]
    await publish(producer, topic, first)
    async with running_consumer(infra, pool, "restart", topic):
        await eventually(lambda: applications(pool), lambda a: len(a) == 30, what="first half applied")

    await publish(producer, topic, second)
    async with running_consumer(infra, pool, "restart", topic):
        # The group's previous member must expire first (the broker, like Kafka after a crash, waits for
        # its session to time out), so this takes several seconds.
        await eventually(lambda: applications(pool), lambda a: len(a) >= 60, timeout=40, what="second half applied")
        await asyncio.sleep(1.0)
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in first + second)
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE group_id = 'restart'") == 60


async def test_bad_records_are_dead_lettered_with_reasons_and_the_consumer_goes_on(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    good_before = stamped(order("O1", [("S1", 1)]))
    failing = stamped(order("O1", [(POISON_SKU, 1)]))
    good_after = stamped(order("O5", [("S2", 2)]))
    invalid = order("O1", [("S1", 1)])
    invalid["payload"]["lines"][0]["quantity"] = -5
    unknown = {**order("O1", [("S1", 1)]), "event_type": "OrderTeleported"}

    await publish(producer, topic, [good_before])
    await producer.send_and_wait(topic, b"\x00not json", key=b"D1")
    await producer.send_and_wait(topic, orjson.dumps(invalid), key=b"D1")
    await producer.send_and_wait(topic, orjson.dumps(unknown), key=b"D1")
    await publish(producer, topic, [failing, good_after])

    async with running_consumer(infra, pool, "poison", topic):
        await eventually(
            lambda: pool.fetchval("SELECT count(*) FROM dead_letters WHERE group_id = 'poison'"),
            lambda n: n == 4,
            what="four dead letters",
        )
        applied = await eventually(lambda: applications(pool), lambda a: len(a) >= 2, what="good events applied")

    assert set(applied) >= {good_before.event_id, good_after.event_id}
    assert failing.event_id not in applied
    rows = await pool.fetch(
        "SELECT reason, detail, event_id, raw FROM dead_letters WHERE group_id = 'poison' ORDER BY id"
    )
    by_reason = {r["reason"]: r for r in rows}
    assert set(by_reason) == {"invalid_event", "unknown_event_type", "handler_failed"}
    assert sum(r["reason"] == "invalid_event" for r in rows) == 2  # not JSON, and a negative quantity
    assert any("quantity" in r["detail"] for r in rows if r["reason"] == "invalid_event")
    assert by_reason["handler_failed"]["event_id"] == failing.event_id
    assert "cannot project order" in by_reason["handler_failed"]["detail"]
    assert bytes(by_reason["unknown_event_type"]["raw"]) == orjson.dumps(unknown)


async def test_offsets_beyond_the_partition_end_replay_from_the_start_without_double_counting(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    """What a memory broker restart looks like to a consumer: its stored offsets point past the end."""
    events = [stamped(order("O3", [("S1", 1)])) for _ in range(10)]
    await publish(producer, topic, events)
    await pool.execute(
        "INSERT INTO processed_events (group_id, event_id) SELECT 'reset', unnest($1::uuid[])",
        [e.event_id for e in events[:5]],
    )
    await pool.executemany(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ('reset', $1, $2, 1000000)",
        [(topic, p) for p in range(3)],
    )

    async with running_consumer(infra, pool, "reset", topic):
        applied = await eventually(lambda: applications(pool), lambda a: len(a) >= 5, what="replayed events")
        await asyncio.sleep(1.0)
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in events[5:])


async def test_a_rebuilt_log_longer_than_the_stored_offset_is_read_from_the_start(
    infra: Infra, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The broker lost its data and the relays refilled it past the offset this consumer had stored: the
    same offsets now hold other records. Seeking to the stored offset would skip records never applied."""
    broker = EmbeddedBroker(free_port(), tmp_path / "tansu.log")
    broker.start()
    own = Infra(infra.database_url, broker.bootstrap_servers, tmp_path)
    topic = "test.rebuilt"
    before = [stamped(order("O1", [("S1", 1)])) for _ in range(10)]
    after = [stamped(order("O1", [("S2", 1)])) for _ in range(25)]
    try:
        await ensure_topics(own.kafka_bootstrap_servers, (Topic(topic, 1, frozenset({"OrderCaptured"}), "test"),))
        await publish_once(own, topic, before)
        async with running_consumer(own, pool, "rebuilt", topic):
            await eventually(lambda: applications(pool), lambda a: len(a) == 10, what="first log applied")

        broker.kill()
        broker.start()
        await ensure_topics(own.kafka_bootstrap_servers, (Topic(topic, 1, frozenset({"OrderCaptured"}), "test"),))
        await publish_once(own, topic, after)  # 25 records: the stored next offset, 10, now falls inside them

        async with running_consumer(own, pool, "rebuilt", topic):
            await eventually(lambda: applications(pool), lambda a: len(a) >= 35, timeout=30, what="rebuilt log")
            await asyncio.sleep(1.0)
            applied = await applications(pool)
    finally:
        broker.stop()

    assert sorted(applied) == sorted(e.event_id for e in before + after)


async def publish_once(infra: Infra, topic: str, events: Sequence[Envelope]) -> None:
    producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
    await producer.start()
    try:
        await publish(producer, topic, events)
    finally:
        await producer.stop()
