"""The outbox and its relay against the real broker and Postgres: pre-encoded records are queued as events are,
and the relay republishes the outbox only when the broker really lost records, not when a broker understates
where a partition ends."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sellthrough_contracts import encode_event, parse_event
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import make_offsets_reader, make_producer
from sellthrough_runtime.outbox import OutboxRecord, OutboxRelay, append_records_to_outbox, append_to_outbox
from tests.conftest import Infra
from tests.support.brand import order

SCHEMA = "relay_test"


@pytest.fixture(scope="module")
async def pool(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncpg.Pool]:
    migrations: Path = tmp_path_factory.mktemp("relay-migrations")  # only the runtime's outbox tables
    await migrate(infra.database_url, SCHEMA, migrations)
    pool = await create_pool(infra.database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture
async def clients(infra: Infra) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer]]:
    producer = make_producer(infra.kafka_bootstrap_servers, "relay-test")
    offsets = make_offsets_reader(infra.kafka_bootstrap_servers, "relay-test-check")
    await producer.start()
    await offsets.start()
    yield producer, offsets
    await offsets.stop()
    await producer.stop()


async def unpublished(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def test_pre_encoded_records_are_queued_exactly_as_events_are(pool: asyncpg.Pool) -> None:
    events = [parse_event(order("O1", [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events[:1])
        await append_records_to_outbox(conn, [OutboxRecord.of(e) for e in events[1:]])
    rows = await pool.fetch(
        "SELECT event_id, event_type, schema_version, topic, partition_key, value, trace_headers FROM outbox "
        "WHERE event_id = ANY($1::uuid[]) ORDER BY seq",
        [e.event_id for e in events],
    )
    assert [tuple(r) for r in rows] == [
        (e.event_id, "OrderCaptured", 1, "sellthrough.trade.v1", "D1", encode_event(e), {}) for e in events
    ]
    await pool.execute("TRUNCATE outbox")


async def test_a_partition_ending_in_a_batch_of_records_is_not_mistaken_for_lost_records(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, offsets = clients
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
    # One distributor, so one partition, in one produce request: a single record batch of 50.
    events = [parse_event(order("O1", [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(50)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
    assert await relay.publish_batch(producer) == 50

    assert await relay.check_broker_retains(offsets)
    assert await unpublished(pool) == 0, "nothing may be queued again while the broker holds every record"

    # The broker really lost the partition's last records (here: the relay published more than it holds).
    await pool.execute("UPDATE outbox_partitions SET next_offset = next_offset + 5")
    assert not await relay.check_broker_retains(offsets)
    assert await unpublished(pool) == 50, "a broker that lost records gets the whole outbox again"
