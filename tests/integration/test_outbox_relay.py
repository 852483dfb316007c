"""The outbox and its relay against the real broker and Postgres: pre-encoded records are queued as events are,
and the relay republishes the outbox only when the broker really lost records, not when a broker understates
where a partition ends."""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import make_offsets_reader, make_producer
from sellthrough_runtime.outbox import OutboxRecord, OutboxRelay, append_records_to_outbox, append_to_outbox
from sellthrough_runtime.relay_thread import RelayThread
from sellthrough_runtime.settings import ServiceSettings
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
    return int(
        await pool.fetchval("SELECT count(*) FROM outbox WHERE seq > (SELECT published_through FROM outbox_progress)")
    )


async def reset_outbox(pool: asyncpg.Pool) -> None:
    """An empty outbox whose seqs start again at 1, nothing published."""
    await pool.execute("TRUNCATE outbox, outbox_partitions RESTART IDENTITY")
    await pool.execute("UPDATE outbox_progress SET published_through = 0")


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
        (e.event_id, "OrderCaptured", e.schema_version, "sellthrough.trade.v1", "D1", encode_event(e), {})
        for e in events
    ]
    await reset_outbox(pool)


async def read_topic(infra: Infra, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=infra.kafka_bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        while batch := await consumer.getmany(timeout_ms=1000):
            records += [record for partition_records in batch.values() for record in partition_records]
        return records
    finally:
        await consumer.stop()


async def test_records_go_where_producer_send_would_put_them_in_outbox_order(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, _ = clients
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test", batch_size=500)
    outlets = ["O1", "O3", "O4", "O2", "O5"]  # distributors D1, D2, D3: three keys
    events = [parse_event(order(outlets[i % 5], [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(300)]
    # Big orders of one distributor: more than one record batch (256 KiB) for its partition.
    big = [("S1", 1), ("S2", 2), ("S3", 3)] * 150
    events[100:120] = [parse_event(order("O1", big)).stamped(datetime.now(UTC)) for _ in range(20)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
    assert await relay.publish_batch(producer) == 300
    generation = await pool.fetchval("SELECT generation FROM outbox_generation")

    published = {
        orjson.loads(r.value)["event_id"]: r for r in await read_topic(infra, "sellthrough.trade.v1") if r.value
    }
    records = [published[str(e.event_id)] for e in events]
    for key in {e.partition_key() for e in events}:
        probe = await producer.send_and_wait("sellthrough.trade.v1", None, key=key.encode())  # a tombstone: skipped
        mine = [r for r in records if r.key == key.encode()]
        assert {r.partition for r in mine} == {probe.partition}, key
        assert [r.offset for r in mine] == sorted(r.offset for r in mine), f"{key}: not in outbox order"
    for event, record in zip(events, records, strict=True):
        assert record.value == encode_event(event)
        assert dict(record.headers) == {
            "event_id": str(event.event_id).encode(),
            "event_type": b"OrderCaptured",
            "schema_version": str(event.schema_version).encode(),
            "outbox_generation": f"relay-test:{generation}".encode(),
        }
    await reset_outbox(pool)


async def queue_orders(pool: asyncpg.Pool, outlet: str, count: int) -> list[Envelope]:
    """`count` orders at one outlet (so one key, one partition), queued in the outbox in one transaction."""
    events = [parse_event(order(outlet, [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
    return events


async def test_a_partition_ending_in_a_batch_of_records_is_not_mistaken_for_lost_records(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, offsets = clients
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
    # One distributor, so one partition, in one produce request: a single record batch of 50.
    events = await queue_orders(pool, "O1", 50)
    assert await relay.publish_batch(producer) == 50

    assert await relay.recovery.check_broker_retains(offsets)
    assert await unpublished(pool) == 0, "nothing may be queued again while the broker holds every record"

    # The broker really lost the partition's last records (here: the relay published more than it holds).
    await pool.execute("UPDATE outbox_partitions SET next_offset = next_offset + 5")
    assert not await relay.recovery.check_broker_retains(offsets)
    assert await unpublished(pool) == 50, "a broker that lost records gets the whole outbox again"

    # Consumers tell the republished copies by their generation (consumer.py): one above the first copies'.
    ids = {str(e.event_id) for e in events}
    assert await relay.publish_batch(producer) == 50
    copies: dict[bytes, int] = {}
    for record in await read_topic(infra, "sellthrough.trade.v1"):
        if record.value and orjson.loads(record.value)["event_id"] in ids:
            generation = dict(record.headers)["outbox_generation"]
            copies[generation] = copies.get(generation, 0) + 1
    now = await pool.fetchval("SELECT generation FROM outbox_generation")
    assert copies == {f"relay-test:{now - 1}".encode(): 50, f"relay-test:{now}".encode(): 50}
    await reset_outbox(pool)


async def test_a_republish_is_trusted_only_once_every_published_event_reads_back_and_the_rest_is_sent_again(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, offsets = clients
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
    await pool.execute("UPDATE outbox_generation SET read_back_pending = false")  # earlier tests republished
    await queue_orders(pool, "O2", 20)
    assert await relay.publish_batch(producer) == 20
    assert await relay.recovery.read_back_if_pending() is None, "no republish yet, so nothing to read back"

    await pool.execute("UPDATE outbox_partitions SET next_offset = next_offset + 5")  # as if records were lost
    assert not await relay.recovery.check_broker_retains(offsets)
    assert await relay.recovery.read_back_if_pending() is None, "not before the republished rows are published again"
    assert await relay.publish_batch(producer) == 20
    assert await relay.recovery.read_back_if_pending() is True, "every republished event is in the topic"
    assert await unpublished(pool) == 0

    # Acknowledged but unreadable (a broker shadowing them with older records): marked published, never sent.
    await pool.execute(
        "INSERT INTO outbox (event_id, event_type, schema_version, topic, partition_key, value, trace_headers) "
        "SELECT gen_random_uuid(), 'OrderCaptured', 1, 'sellthrough.trade.v1', 'D9', '\\x00', '{}' "
        "FROM generate_series(1, 3)"
    )
    await pool.execute("UPDATE outbox_progress SET published_through = (SELECT max(seq) FROM outbox)")
    await pool.execute("UPDATE outbox_generation SET read_back_pending = true")
    generation = await pool.fetchval("SELECT generation FROM outbox_generation")
    assert await relay.recovery.read_back_if_pending() is False
    assert await unpublished(pool) == 0, "not the whole outbox again"
    assert await pool.fetchval("SELECT generation FROM outbox_generation") == generation
    unreadable = [r["seq"] for r in await pool.fetch("SELECT seq FROM outbox WHERE partition_key = 'D9' ORDER BY seq")]
    assert [r["seq"] for r in await pool.fetch("SELECT seq FROM outbox_resend ORDER BY seq")] == unreadable
    assert await relay.recovery.read_back_if_pending() is None, "not before they are sent again"
    assert await relay.publish_turn(producer) == 3, "only what cannot be read is sent again"
    assert await relay.recovery.read_back_if_pending() is True
    await reset_outbox(pool)
    await pool.execute("UPDATE outbox_generation SET read_back_pending = false")


async def published_through(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT published_through FROM outbox_progress"))


async def test_a_turn_publishes_batch_after_batch_in_outbox_order_and_moves_the_mark_once_per_batch(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, _ = clients
    await reset_outbox(pool)
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test", batch_size=40)
    outlets = ["O1", "O3", "O4"]  # three distributors, so three keys
    events = [parse_event(order(outlets[i % 3], [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(410)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
    last_seq = await pool.fetchval("SELECT max(seq) FROM outbox")

    assert await relay.publish_turn(producer) == 410, "one turn drains the outbox, 40 rows a batch"
    assert await published_through(pool) == last_seq
    assert await unpublished(pool) == 0
    assert await relay.publish_turn(producer) == 0

    ids = {str(e.event_id): i for i, e in enumerate(events)}
    by_key: dict[bytes | None, list[int]] = {}
    for record in await read_topic(infra, "sellthrough.trade.v1"):
        event_id = dict(record.headers).get("event_id", b"").decode()
        if (position := ids.get(event_id)) is not None:
            by_key.setdefault(record.key, []).append(position)
    assert sum(len(positions) for positions in by_key.values()) == 410, "each event once"
    for key, positions in by_key.items():
        assert positions == sorted(positions), f"{key!r}: not in outbox order"
    await reset_outbox(pool)


async def test_the_mark_never_passes_a_row_whose_transaction_is_still_open(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, _ = clients
    await reset_outbox(pool)
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
    slow = parse_event(order("O1", [("S1", 1)])).stamped(datetime.now(UTC))
    async with pool.acquire() as slow_conn:
        transaction = slow_conn.transaction()
        await transaction.start()
        await append_to_outbox(slow_conn, [slow])  # takes seq 1, not committed yet
        await queue_orders(pool, "O2", 3)  # seqs 2-4, committed
        for _ in range(3):  # however often it looks, seq 1 may still commit
            assert await relay.publish_turn(producer) == 0
        assert await published_through(pool) == 0
        await transaction.commit()
    assert await relay.publish_turn(producer) == 4
    assert await published_through(pool) == 4
    await reset_outbox(pool)


async def test_a_seq_whose_transaction_rolled_back_is_passed_once_no_older_transaction_runs(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, _ = clients
    await reset_outbox(pool)
    relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await append_to_outbox(conn, [parse_event(order("O1", [("S1", 1)])).stamped(datetime.now(UTC))])
        await transaction.rollback()  # seq 1 is never used
    await queue_orders(pool, "O2", 3)  # seqs 2-4

    # The gap is seen, then the transactions running once it was seen must end: a few turns, not a timeout.
    published = [await relay.publish_turn(producer) for _ in range(3)]
    assert published == [0, 0, 3]
    assert await published_through(pool) == 4
    await reset_outbox(pool)


async def test_two_relays_take_turns_so_each_row_is_sent_once_and_in_order(
    infra: Infra, pool: asyncpg.Pool, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
) -> None:
    producer, _ = clients
    await reset_outbox(pool)
    relays = [OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test", batch_size=25) for _ in range(2)]
    events = await queue_orders(pool, "O5", 300)  # one key: its order is the outbox order

    published = await asyncio.gather(*(relay.publish_turn(producer) for relay in relays))
    assert sorted(published) == [0, 300], "the second relay waited for the first one's turn, then found nothing"

    ids = {str(e.event_id): i for i, e in enumerate(events)}
    positions = [
        ids[event_id]
        for record in await read_topic(infra, "sellthrough.trade.v1")
        if (event_id := dict(record.headers).get("event_id", b"").decode()) in ids
    ]
    assert positions == list(range(300)), "each event once, in outbox order"
    await reset_outbox(pool)


async def test_a_claimed_batch_is_sent_at_once_however_long_the_producer_lingers(
    infra: Infra, pool: asyncpg.Pool
) -> None:
    await reset_outbox(pool)
    # The relay hands over complete record batches: a producer's linger (waiting for send() to add records) would
    # only delay them. With 3 s of linger, an open batch waits 3 s for its acknowledgement.
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all", linger_ms=3000)
    await producer.start()
    try:
        relay = OutboxRelay(pool, infra.kafka_bootstrap_servers, "relay-test")
        await queue_orders(pool, "O1", 5)
        await producer.partitions_for("sellthrough.trade.v1")  # metadata first: only the publish is timed
        started = time.monotonic()
        assert await relay.publish_turn(producer) == 5
        assert time.monotonic() - started < 1.5, "the relay's batches lingered in the producer"
    finally:
        await producer.stop()
    await reset_outbox(pool)


async def test_a_relay_in_its_own_thread_publishes_when_woken_and_stops_when_its_job_is_cancelled(
    infra: Infra, pool: asyncpg.Pool
) -> None:
    await reset_outbox(pool)
    settings = ServiceSettings(database_url=infra.database_url, kafka_bootstrap_servers=infra.kafka_bootstrap_servers)

    def build(own: asyncpg.Pool) -> OutboxRelay:
        return OutboxRelay(own, infra.kafka_bootstrap_servers, "relay-test")

    threaded = RelayThread(settings, "relay-test", SCHEMA, build, idle_poll_seconds=3)
    job = asyncio.create_task(threaded.run())
    try:
        await queue_orders(pool, "O3", 5)
        await wait_until_published(pool, 5, within=30)  # started, then found them
        # Idle now: it polls every 3 s, so only a wake from this (another) thread's loop publishes at once.
        relay_threads = [t for t in threading.enumerate() if t.name == "relay-test-outbox-relay"]
        assert len(relay_threads) == 1
        for _ in range(3):
            await queue_orders(pool, "O3", 5)
            woken = time.monotonic()
            threaded.wake()
            await wait_until_published(pool, 0, within=5)
            assert time.monotonic() - woken < 1, "published at its poll, not when woken"
        # A wake that never comes (lost, or rows from another process): the poll still finds them.
        await queue_orders(pool, "O3", 5)
        await wait_until_published(pool, 0, within=8)
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    assert not relay_threads[0].is_alive(), "the relay's thread outlived its job"
    await reset_outbox(pool)


async def wait_until_published(pool: asyncpg.Pool, left: int, within: float) -> None:
    """Until at most `left` rows are unpublished; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while await unpublished(pool) > left:
        assert time.monotonic() < deadline, f"{await unpublished(pool)} rows still unpublished"
        await asyncio.sleep(0.01)
