"""Transactional outbox: write events with the state change, publish them to Kafka afterwards.

Accepted means durable in Postgres. The relay publishes unpublished rows in order with acks=all and marks them
published; if the broker is down it retries, so an outage delays events and never loses them. Relays of one
service take turns on an advisory lock, so each key's events reach Kafka in outbox order. Published rows are
kept: if the broker loses records, RelayRecovery (log_recovery/) queues them all again. How and why:
docs/broker-behaviour.md.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata

from sellthrough_contracts import Envelope, encode_event, topic_for
from sellthrough_runtime.kafka import ensure_topics, make_offsets_reader, make_producer
from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.log_recovery import GENERATION_HEADER, PartitionRanges, RelayRecovery
from sellthrough_runtime.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISH_SECONDS, OUTBOX_PUBLISHED
from sellthrough_runtime.tracing import carrier_for

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO outbox (event_id, event_type, schema_version, topic, partition_key, value, trace_headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bytea[], $7::jsonb[])
"""

_TAKE_TURN = "SELECT pg_advisory_xact_lock(hashtext($1))"

# No row locks: relays take turns on the advisory lock (_TAKE_TURN) for the whole claim-send-mark transaction,
# so no other relay reads these rows meanwhile. A lock per row would cost a WAL record per event.
_CLAIM = """
SELECT seq, event_id, event_type, schema_version, topic, partition_key, value, trace_headers
FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1
"""


class OutboxRecord(NamedTuple):
    """One event ready to be queued: its wire form (what `encode_event` returns for it) and its Kafka key, for a
    caller that has encoded the event already and should not pay for a second encoding."""

    event_id: UUID
    event_type: str
    schema_version: int
    partition_key: str
    value: bytes
    causation_id: UUID | None = None

    @classmethod
    def of(cls, event: Envelope) -> "OutboxRecord":
        return cls(
            event.event_id,
            event.event_type,
            event.schema_version,
            event.key or event.partition_key(),
            encode_event(event),
            event.causation_id,
        )


async def append_to_outbox(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Queue events for publishing; call inside the transaction that produced them."""
    await append_records_to_outbox(conn, [OutboxRecord.of(e) for e in events])


async def append_records_to_outbox(conn: asyncpg.Connection, records: Sequence[OutboxRecord]) -> None:
    """Queue already encoded events for publishing, in this order; call inside the transaction that produced
    them."""
    if not records:
        return
    # The trace context depends only on the cause (and the current span, the same for the whole call).
    carriers: dict[UUID | None, dict[str, str]] = {}
    for r in records:
        if r.causation_id not in carriers:
            carriers[r.causation_id] = carrier_for(r.causation_id)
    await conn.execute(
        _INSERT,
        [r.event_id for r in records],
        [r.event_type for r in records],
        [r.schema_version for r in records],
        [topic_for(r.event_type).name for r in records],
        [r.partition_key for r in records],
        [r.value for r in records],
        [carriers[r.causation_id] for r in records],
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bootstrap_servers: str,
        service: str,
        *,
        batch_size: int = 1000,
        retention_check_seconds: float = 10.0,
        security: KafkaSecuritySettings | None = None,
    ) -> None:
        """`security`: TLS/SASL of its Kafka clients (the KAFKA_* environment variables if None)."""
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._service = service
        self._batch_size = batch_size
        self._retention_check_seconds = retention_check_seconds
        self._lock_name = f"sellthrough-outbox-relay:{service}"
        self._wake = asyncio.Event()
        self.recovery = RelayRecovery(pool, bootstrap_servers, service, self._take_turn, security)

    def wake(self) -> None:
        """Tell the relay new rows are waiting, so it publishes now instead of at its next poll."""
        self._wake.set()

    async def run(self, idle_poll_seconds: float = 0.5) -> None:
        """Publish until cancelled."""
        # A broker that restarted empty has no topics: create them with their partition counts before
        # anything is published, rather than let a send auto-create them with the broker's default.
        await ensure_topics(self._bootstrap_servers, security=self._security)
        producer = make_producer(self._bootstrap_servers, client_id=f"{self._service}-relay", security=self._security)
        offsets = make_offsets_reader(
            self._bootstrap_servers, client_id=f"{self._service}-relay-check", security=self._security
        )
        async with contextlib.AsyncExitStack() as clients:
            for client in (producer, offsets):
                await client.start()
                clients.push_async_callback(client.stop)
            await self._publish_forever(producer, offsets, idle_poll_seconds)

    async def _publish_forever(
        self, producer: AIOKafkaProducer, offsets: AIOKafkaConsumer, idle_poll_seconds: float
    ) -> None:
        backoff = 0.1
        last_check = time.monotonic()
        topics_checked = True
        while True:
            try:
                if not topics_checked:
                    # After a failure the broker may be back but empty: recreate the topics before a send
                    # could auto-create one with the broker's default partition count.
                    await ensure_topics(self._bootstrap_servers, security=self._security)
                    topics_checked = True
                published = await self.publish_batch(producer)
                backoff = 0.1
            except Exception as error:  # noqa: BLE001 - the relay must outlive any broker or database fault
                # Nothing was marked published, so the same rows are retried: delayed, never lost.
                log.warning("outbox publish failed; retrying", extra={"error": repr(error), "backoff_s": backoff})
                topics_checked = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                if time.monotonic() - last_check >= self._retention_check_seconds:
                    last_check = time.monotonic()
                    # With nothing new to publish no delivery would reveal a broker that lost its data.
                    with contextlib.suppress(Exception):
                        await self.recovery.check_broker_retains(offsets)
                    try:
                        await self.recovery.read_back_if_pending()
                    except Exception as error:  # noqa: BLE001 - tried again at the next check
                        log.warning("reading the outbox back failed", extra={"error": repr(error)})
                await self._record_backlog()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_poll_seconds)

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish up to one batch of unpublished rows; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._take_turn(conn)
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            started = time.perf_counter()
            delivered = await _send(producer, rows, await self.recovery.mark(conn))
            if not await self.recovery.delivered(conn, delivered):
                return len(rows)  # queued again, with everything published before
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
        OUTBOX_PUBLISH_SECONDS.labels(self._service).observe(time.perf_counter() - started)
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def _take_turn(self, conn: asyncpg.Connection) -> None:
        await conn.execute(_TAKE_TURN, self._lock_name)

    async def _record_backlog(self) -> None:
        # Cheap: the partial index holds only unpublished rows.
        count = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        OUTBOX_BACKLOG.labels(self._service).set(count)


async def _send(producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record], generation: bytes) -> PartitionRanges:
    """Send the rows, in their order, as record batches built here (one per partition, more if one fills up) and
    wait for every one to be acknowledged. Each row goes to the partition producer.send() would choose (the
    default partitioner on its key); building the batches directly saves send()'s per-record bookkeeping."""
    partitions: dict[str, list[int]] = {}
    chosen: dict[tuple[str, bytes], int] = {}
    batches: dict[tuple[str, int], list[BatchBuilder]] = {}
    for row in rows:
        topic, key = row["topic"], row["partition_key"].encode()
        if (partition := chosen.get((topic, key))) is None:
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = chosen[(topic, key)] = _PARTITIONER(key, partitions[topic], partitions[topic])
        headers = [
            ("event_id", str(row["event_id"]).encode()),
            ("event_type", row["event_type"].encode()),
            ("schema_version", str(row["schema_version"]).encode()),
            (GENERATION_HEADER, generation),
            *((name, str(value).encode()) for name, value in row["trace_headers"].items()),
        ]
        queue = batches.setdefault((topic, partition), [producer.create_batch()])
        if queue[-1].append(key=key, value=row["value"], timestamp=None, headers=headers) is None:  # full
            queue.append(producer.create_batch())
            queue[-1].append(key=key, value=row["value"], timestamp=None, headers=headers)  # a first record fits
    sent = [
        (await producer.send_batch(batch, topic, partition=partition), batch.record_count())
        for (topic, partition), queue in batches.items()
        for batch in queue
    ]
    ranges: PartitionRanges = {}
    for delivery, count in sent:
        metadata: RecordMetadata = await delivery
        key = (metadata.topic, metadata.partition)
        low, high = ranges.get(key, (metadata.offset, metadata.offset + count))
        ranges[key] = (min(low, metadata.offset), max(high, metadata.offset + count))
    return ranges


_PARTITIONER = DefaultPartitioner()
"""What the relay's producer uses (make_producer sets no other): murmur2 of the key, as the Java client."""
