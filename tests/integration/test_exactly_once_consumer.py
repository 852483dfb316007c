"""The exactly-once consumer loop against the real broker and Postgres: redeliveries, restarts, poison
records, handler failures and a broker that lost its data."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_contracts.topics import Topic
from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.processes import free_port
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_consumer, make_producer
from sellthrough_runtime.log_recovery import GENERATION_HEADER, consumer_side, record_digest
from tests.conftest import Infra
from tests.support.brand import order
from tests.support.waiting import eventually

SCHEMA = "consumer_test"
POISON_SKU = "S3"  # the test handler fails on orders containing it, as a projection bug would
SESSION_TIMEOUT_MS = 2000
"""The test consumers' group session (make_consumer's default: 6 s). Tansu answers a join after half a session, and
a member replacing a stopped one waits for that one's session to end, so every consumer started here waited 3 s
or more before its first record: most of these tests' time."""
MISSING_RECORD_WAIT_SECONDS = 1.0
STARVED_FETCHES = 4
"""The consumer's waits before it gives up on a last applied record that seems to be missing (5 s and 5 fetches in
production) and on a partition that delivers nothing (starved_after_seconds and 10 fetches, each fetch 0.5 s when
nothing comes), in the tests that wait them out (quicker_recovery): what happens after them is the same, only
sooner."""


@pytest.fixture
def quicker_recovery(monkeypatch: pytest.MonkeyPatch) -> float:
    """The missing-record wait, shortened (the starvation's own time is running_consumer's starved_after_seconds)."""
    monkeypatch.setattr(consumer_side, "_MISSING_RECORD_WAIT_SECONDS", MISSING_RECORD_WAIT_SECONDS)
    monkeypatch.setattr(consumer_side, "_STARVED_FETCHES", STARVED_FETCHES)
    return MISSING_RECORD_WAIT_SECONDS


def quick_consumer(bootstrap_servers: str, group_id: str) -> AIOKafkaConsumer:
    return make_consumer(
        bootstrap_servers, group_id, group_id, session_timeout_ms=SESSION_TIMEOUT_MS, rebalance_timeout_ms=2000
    )


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
async def running_consumer(
    infra: Infra,
    pool: asyncpg.Pool,
    group_id: str,
    topic: str,
    kafka: AIOKafkaConsumer | None = None,
    starved_after_seconds: float = 15.0,
) -> AsyncIterator[None]:
    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=kafka or quick_consumer(infra.kafka_bootstrap_servers, group_id),
        group_id=group_id,
        topics=[topic],
        handler=counting_handler,
        wanted_types=frozenset({"OrderCaptured"}),
        batch_max=50,
        starved_after_seconds=starved_after_seconds,
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


@pytest.mark.usefixtures("quicker_recovery")
async def test_a_quiet_partition_ending_before_its_stored_offset_has_its_last_record_checked(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    """A log rebuilt shorter than a running consumer's position (the old log held duplicates a republish does not
    repeat) delivers nothing to it, and no generation header ever arrives. Tansu makes a consumer rejoin after
    its restart, which checks the log; should a consumer not rejoin, the quiet-partition check must. Here the
    stored offset is moved beyond the end under a running consumer, as that case would leave it."""
    events = [stamped(order("O1", [("S1", i + 1)])) for i in range(5)]
    records = await publish_in_one_batch(producer, topic, events)

    async with running_consumer(infra, pool, "quiet-short", topic, starved_after_seconds=2.0):
        await eventually(lambda: applications(pool), lambda a: len(a) == 5, what="the records")
        await pool.execute(
            "UPDATE consumer_offsets SET next_offset = 1000, last_record_digest = $1 "
            "WHERE group_id = 'quiet-short' AND partition = 0",
            b"a record the partition does not hold",
        )
        await eventually(
            lambda: pool.fetchval(
                "SELECT next_offset FROM consumer_offsets WHERE group_id = 'quiet-short' AND partition = 0"
            ),
            lambda next_offset: next_offset == records[-1].offset + 1,
            timeout=30,
            what="the partition re-read from its start",
        )
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in events)  # re-read, not re-applied
    labels = {"group": "quiet-short", "topic": topic, "reason": "log_rebuilt"}
    assert REGISTRY.get_sample_value("sellthrough_consumer_partition_rereads_total", labels) == 1.0


async def publish_in_one_batch(
    producer: AIOKafkaProducer, topic: str, events: Sequence[Envelope], generation: str | None = None
) -> list[ConsumerRecord[bytes, bytes]]:
    """Send the events to partition 0 without waiting in between (one record batch, as the relay sends), each
    with the outbox generation header if given; returns them as the records a consumer would read."""
    headers = [] if generation is None else [(GENERATION_HEADER, generation.encode())]
    sent = [await producer.send(topic, encode_event(e), key=b"k", partition=0, headers=headers) for e in events]
    offsets = [metadata.offset for metadata in await asyncio.gather(*sent)]
    return [
        ConsumerRecord(topic, 0, offset, 0, 0, b"k", encode_event(e), None, 1, 1, headers)
        for offset, e in zip(offsets, events, strict=True)
    ]


async def store_position(pool: asyncpg.Pool, group: str, last: ConsumerRecord[bytes, bytes], generations: str) -> None:
    """What a consumer that applied everything up to `last` (and saw these outbox generations) left behind."""
    await pool.execute(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, last_record_digest, "
        "producer_generations) VALUES ($1, $2, 0, $3, $4, $5::text::jsonb)",
        group,
        last.topic,
        last.offset + 1,
        record_digest(last),
        generations,
    )


async def test_a_higher_outbox_generation_sends_the_consumer_back_to_the_start(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    """The broker lost its data and the relay refilled the partition while this consumer kept fetching from its
    old position, never rejoining its group: it applied the rebuilt log's records from that position on, so
    its stored offset and digest agree with the new log, yet the records below that position were never
    applied. The republished records carry a higher outbox generation; seeing one must send it back."""
    published_before_the_loss_was_noticed = [stamped(order("O1", [("S1", i + 1)])) for i in range(10)]
    republished = [stamped(order("O1", [("S2", i + 1)])) for i in range(10)]
    old = await publish_in_one_batch(producer, topic, published_before_the_loss_was_noticed, "order-capture:0")
    new = await publish_in_one_batch(producer, topic, republished, "order-capture:1")
    await store_position(pool, "rewind", old[4], '{"order-capture": 0}')  # it went on from offset 5 in the new log

    async with running_consumer(infra, pool, "rewind", topic):
        await eventually(lambda: applications(pool), lambda a: len(a) >= 20, what="every record of the new log")
        await asyncio.sleep(1.0)
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in published_before_the_loss_was_noticed + republished)
    stored = await pool.fetchval("SELECT producer_generations FROM consumer_offsets WHERE group_id = 'rewind'")
    assert stored == {"order-capture": 1}
    assert new[-1].offset == await pool.fetchval(
        "SELECT next_offset - 1 FROM consumer_offsets WHERE group_id = 'rewind'"
    )


async def test_a_partition_reported_to_end_early_is_not_reread_while_its_last_record_is_there(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, quicker_recovery: float
) -> None:
    """Tansu reports the start of a partition's last record batch as its end: after a batch of 20 records the
    end looks like 1, far below the stored offset 20. The last applied record is still there, so a restart
    must go on from the stored offset, not re-apply the whole partition."""
    already_applied = [stamped(order("O1", [("S1", i + 1)])) for i in range(20)]
    records = await publish_in_one_batch(producer, topic, already_applied)
    await store_position(pool, "not-short", records[-1], "{}")
    later = [stamped(order("O1", [("S2", 1)]))]
    await publish(producer, topic, later)

    async with running_consumer(infra, pool, "not-short", topic):
        await eventually(lambda: applications(pool), lambda a: len(a) >= 1, what="the record after the stored offset")
        await asyncio.sleep(quicker_recovery + 1.5)  # beyond the consumer's wait for a missing record
        applied = await applications(pool)

    assert applied == [later[0].event_id]


async def test_a_stored_offset_beyond_the_end_is_reread_once_its_last_record_fails_to_arrive(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, quicker_recovery: float
) -> None:
    """A broker that lost the record at the stored offset may answer a fetch there with nothing rather than an
    error (Tansu does): the consumer must not wait there forever."""
    events = [stamped(order("O1", [("S1", i + 1)])) for i in range(5)]
    records = await publish_in_one_batch(producer, topic, events)
    lost = ConsumerRecord(topic, 0, 999, 0, 0, b"k", b"gone", None, 1, 1, [])
    await store_position(pool, "lost", lost, "{}")

    async with running_consumer(infra, pool, "lost", topic):
        await eventually(lambda: applications(pool), lambda a: len(a) >= 5, timeout=30, what="the partition re-read")
        applied = await applications(pool)

    assert sorted(applied) == sorted(e.event_id for e in events)
    assert records[-1].offset + 1 == await pool.fetchval(
        "SELECT next_offset FROM consumer_offsets WHERE group_id = 'lost'"
    )


@pytest.mark.usefixtures("quicker_recovery")
async def test_a_partition_that_delivers_nothing_while_records_wait_is_read_again(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str
) -> None:
    """Whatever keeps a partition from delivering (here the client's fetch state for it: paused), records waiting
    beyond the stored offset must not wait forever: the partition is read again once it has been quiet a while."""
    kafka = quick_consumer(infra.kafka_bootstrap_servers, "starved")
    events, applied = await starve_partition_0(infra, pool, producer, topic, kafka, "starved")
    assert sorted(applied) == sorted(e.event_id for e in events)


async def starve_partition_0(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, kafka: AIOKafkaConsumer, group: str
) -> tuple[list[Envelope], list[uuid.UUID]]:
    """Five records of partition 0 applied by a consumer on `kafka`; then the partition paused in that client and
    five more sent. Returns the ten events and what was applied once ten were (or the wait's failure)."""
    tp = TopicPartition(topic, 0)
    first = [stamped(order("O1", [("S1", i + 1)])) for i in range(5)]
    second = [stamped(order("O1", [("S2", i + 1)])) for i in range(5)]
    for event in first:
        await producer.send_and_wait(topic, encode_event(event), key=b"k", partition=0)
    async with running_consumer(infra, pool, group, topic, kafka=kafka, starved_after_seconds=2.0):
        await eventually(lambda: applications(pool), lambda a: len(a) >= 5, what="the first records")
        kafka.pause(tp)
        for event in second:
            await producer.send_and_wait(topic, encode_event(event), key=b"k", partition=0)
        await eventually(lambda: applications(pool), lambda a: len(a) >= 10, timeout=40, what="the records waiting")
        await asyncio.sleep(0.5)
        return first + second, await applications(pool)


class ResumesOnSecondTry(AIOKafkaConsumer):  # type: ignore[misc]
    """A client whose paused partitions stay paused through the first resume(): a partition that stays stuck
    after being read again from its stored offset."""

    resumes = 0

    def resume(self, *partitions: TopicPartition) -> None:
        self.resumes += 1
        if self.resumes > 1:
            super().resume(*partitions)


@pytest.mark.usefixtures("quicker_recovery")
async def test_a_partition_starving_again_without_progress_is_read_from_the_beginning(
    infra: Infra, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = ResumesOnSecondTry(
        bootstrap_servers=infra.kafka_bootstrap_servers,
        group_id="starved-twice",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        rebalance_timeout_ms=2000,
    )
    events, applied = await starve_partition_0(infra, pool, producer, topic, kafka, "starved-twice")
    assert sorted(applied) == sorted(e.event_id for e in events)
    assert kafka.resumes == 2
    counted = {
        reason: REGISTRY.get_sample_value(
            "sellthrough_consumer_partition_rereads_total", {"group": "starved-twice", "topic": topic, "reason": reason}
        )
        for reason in ("starved", "starved_again")
    }
    assert counted == {"starved": 1.0, "starved_again": 1.0}
    rereads = [r.getMessage() for r in caplog.records if "delivers nothing" in r.getMessage()]
    assert rereads == [
        "partition delivers nothing although records wait; reading it again from the stored offset",
        "partition delivers nothing although records wait; reading it again from the beginning",
    ]


async def publish_once(infra: Infra, topic: str, events: Sequence[Envelope]) -> None:
    producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
    await producer.start()
    try:
        await publish(producer, topic, events)
    finally:
        await producer.stop()


class ScriptedKafka:
    """An AIOKafkaConsumer stand-in whose partitions, positions and rebalances the test drives, to place a
    rebalance exactly between a prefetched batch and its turn. getmany returns what the assigned partitions
    hold from their current positions (as aiokafka does after a seek); call number `hold_call` waits for
    `release`."""

    def __init__(self, topic: str, partitions: int) -> None:
        self.logs: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {
            TopicPartition(topic, p): [] for p in range(partitions)
        }
        self.positions: dict[TopicPartition, int] = {}
        self.assigned: set[TopicPartition] = set()
        self.listener: Any = None
        self.calls = 0
        self.hold_call: int | None = None
        self.release = asyncio.Event()
        self.subscribed = asyncio.Event()

    def append(self, tp: TopicPartition, events: Sequence[Envelope]) -> None:
        log = self.logs[tp]
        for event in events:
            value, key = encode_event(event), event.partition_key().encode()
            log.append(
                ConsumerRecord(tp.topic, tp.partition, len(log), 0, 0, key, value, None, len(key), len(value), [])
            )

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, topics: Sequence[str], listener: Any) -> None:
        self.listener = listener
        self.subscribed.set()

    async def rebalance(self, revoked: set[TopicPartition], assigned: set[TopicPartition]) -> None:
        """What the group coordinator does: revoke callback, new assignment, assign callback."""
        await self.listener.on_partitions_revoked(sorted(revoked))
        self.assigned = set(assigned)
        await self.listener.on_partitions_assigned(sorted(assigned))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.logs[tp])

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in tps}

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.calls += 1
        if self.calls == self.hold_call:
            await self.release.wait()
        for _ in range(max(timeout_ms // 10, 1)):
            batch = {}
            for tp in sorted(self.assigned):
                position = self.positions.get(tp, 0)
                records = self.logs[tp][position:]
                if records:
                    self.positions[tp] = position + len(records)
                    batch[tp] = records
            if batch:
                return batch
            await asyncio.sleep(0.01)
        return {}


@contextlib.asynccontextmanager
async def scripted_consumer(
    pool: asyncpg.Pool, group_id: str, kafka: ScriptedKafka, handler_gate: asyncio.Event
) -> AsyncIterator[None]:
    """A consumer on `kafka` whose first handler call waits for `handler_gate`."""
    calls = 0

    async def handler(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await handler_gate.wait()
        await counting_handler(conn, events)

    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=kafka,  # type: ignore[arg-type]
        group_id=group_id,
        topics=["scripted"],
        handler=handler,
        wanted_types=frozenset({"OrderCaptured"}),
    )
    task = asyncio.create_task(consumer.run())
    try:
        await kafka.subscribed.wait()  # run() has started the consumer
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_batch_prefetched_from_a_partition_revoked_meanwhile_is_never_applied(pool: asyncpg.Pool) -> None:
    kafka = ScriptedKafka("scripted", 2)
    p0, p1 = sorted(kafka.logs)
    first = [stamped(order("O1", [("S1", 1)])) for _ in range(5)]
    second = [stamped(order("O4", [("S2", 1)])) for _ in range(5)]
    kafka.append(p0, first)
    gate = asyncio.Event()
    async with scripted_consumer(pool, "prefetch-revoked", kafka, gate):
        await kafka.rebalance(set(), {p0, p1})
        await eventually(lambda: _async(kafka.calls), lambda calls: calls >= 2, what="the first batch applying")
        kafka.append(p1, second)  # fetched and decoded while the first batch waits in its transaction
        await eventually(lambda: _async(kafka.positions.get(p1)), lambda position: position == 5, what="prefetch")
        revoking = asyncio.create_task(kafka.rebalance({p0, p1}, {p0}))  # p1 goes to another member
        gate.set()
        await revoking
        await asyncio.sleep(0.5)  # time enough to (wrongly) apply the prefetched batch
        assert sorted(await applications(pool)) == sorted(e.event_id for e in first)
        stored = await pool.fetch("SELECT partition FROM consumer_offsets WHERE group_id = 'prefetch-revoked'")
        assert {r["partition"] for r in stored} == {p0.partition}

        await kafka.rebalance({p0}, {p0, p1})  # p1 back: read from its stored offset (none: the start)
        applied = await eventually(lambda: applications(pool), lambda a: len(a) >= 10, what="p1 applied")
        await asyncio.sleep(0.3)
        applied = await applications(pool)
    assert sorted(applied) == sorted(e.event_id for e in first + second)


async def test_records_read_after_a_rebalance_seek_but_fetched_across_it_are_read_again(pool: asyncpg.Pool) -> None:
    """The prefetch began before a rebalance and returned after its seek: its records are new, but it was
    dropped as stale, so they must be fetched again, not skipped."""
    kafka = ScriptedKafka("scripted", 2)
    p0, p1 = sorted(kafka.logs)
    first = [stamped(order("O1", [("S1", 1)])) for _ in range(5)]
    second = [stamped(order("O4", [("S2", 1)])) for _ in range(5)]
    kafka.append(p0, first)
    kafka.hold_call = 2  # the prefetch during the first batch waits until after the rebalance
    gate = asyncio.Event()
    async with scripted_consumer(pool, "prefetch-across", kafka, gate):
        await kafka.rebalance(set(), {p0, p1})
        await eventually(lambda: _async(kafka.calls), lambda calls: calls >= 2, what="the first batch applying")
        kafka.append(p1, second)
        rebalancing = asyncio.create_task(kafka.rebalance({p0, p1}, {p0, p1}))
        gate.set()
        await rebalancing  # p0 sought back to its last applied record (to verify it), p1 to its start
        kafka.release.set()  # the prefetch now returns p0's last record and all of p1: fetched after the seek
        applied = await eventually(lambda: applications(pool), lambda a: len(a) >= 10, what="p1 applied")
        await asyncio.sleep(0.3)
        applied = await applications(pool)
    assert sorted(applied) == sorted(e.event_id for e in first + second)


class PreparedCounting:
    """counting_handler as a PreparingHandler, recording which way each batch was applied."""

    def __init__(self, fail_to_prepare: bool = False) -> None:
        self.fail_to_prepare = fail_to_prepare
        self.written: list[int] = []
        self.called: list[int] = []

    def prepare(self, events: Sequence[Envelope]) -> list[Envelope]:
        if self.fail_to_prepare:
            raise ValueError("cannot prepare")
        return list(events)

    async def write(self, conn: asyncpg.Connection, prepared: list[Envelope]) -> None:
        self.written.append(len(prepared))
        await counting_handler(conn, prepared)

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None:
        self.called.append(len(events))
        await self.write(conn, self.prepare(events))


def as_records(
    tp: TopicPartition, events: Sequence[Envelope], first_offset: int = 0
) -> list[ConsumerRecord[bytes, bytes]]:
    records = []
    for offset, event in enumerate(events, first_offset):
        value, key = encode_event(event), event.partition_key().encode()
        records.append(ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, key, value, None, len(key), len(value), []))
    return records


async def test_a_prepared_batch_is_written_as_prepared_unless_some_events_were_already_applied(
    pool: asyncpg.Pool,
) -> None:
    handler = PreparedCounting()
    applier = BatchApplier(pool=pool, group_id="prepared", handler=handler, wanted_types=frozenset({"OrderCaptured"}))
    events = [stamped(order("O1", [("S1", 1)])) for _ in range(4)]
    await applier.apply_batch(as_records(TopicPartition("prepared", 0), events[:2]))
    assert (handler.written, handler.called) == ([2], [])  # prepared while decoding, written in the transaction

    await applier.apply_batch(as_records(TopicPartition("prepared", 0), events, 2))  # two redelivered, two new
    assert (handler.written, handler.called) == ([2, 2], [2])  # prepared again for the two new ones only
    assert sorted(await applications(pool)) == sorted(e.event_id for e in events)


async def test_a_batch_that_fails_to_prepare_is_dead_lettered_not_fatal(pool: asyncpg.Pool) -> None:
    handler = PreparedCounting(fail_to_prepare=True)
    applier = BatchApplier(pool=pool, group_id="unprepared", handler=handler, wanted_types=frozenset({"OrderCaptured"}))
    events = [stamped(order("O1", [("S1", 1)])) for _ in range(2)]
    await applier.apply_batch(as_records(TopicPartition("unprepared", 0), events))
    reasons = await pool.fetch("SELECT reason, event_id FROM dead_letters WHERE group_id = 'unprepared'")
    assert sorted((r["reason"], r["event_id"]) for r in reasons) == sorted(
        ("handler_failed", e.event_id) for e in events
    )
    assert await applications(pool) == []


async def _async(value: Any) -> Any:
    return value
