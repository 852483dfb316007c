"""Transactional outbox: write events with the state change, publish them to Kafka afterwards.

Accepted means durable in Postgres. The relay publishes rows in seq order with acks=all, pipelined (the next
batch is claimed, and the previous one marked, while the current one awaits its acknowledgement), and records
its progress as one high-water mark (outbox_progress.published_through) once a batch is acknowledged; if the
broker is down it retries from the mark, so an outage delays events and never loses them. Relays of one service
take turns on an advisory lock, so each key's events reach Kafka in outbox order. Published rows are kept for
the retention window (retention.py): if the broker loses records, RelayRecovery (log_recovery/) queues what is
kept again. How and why: docs/broker-behaviour.md.
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
from sellthrough_runtime.outbox_claims import OutboxClaims
from sellthrough_runtime.tracing import carriers_for

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO outbox (event_id, event_type, schema_version, topic, partition_key, value, trace_headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bytea[], $7::jsonb[])
"""
_INSERT_ONE_CARRIER = """
INSERT INTO outbox (event_id, event_type, schema_version, topic, partition_key, value, trace_headers)
SELECT u.*, $7::jsonb FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bytea[]) AS u
"""
"""_INSERT when every row has the same trace context (a request's events and what it derives from them): the
context is sent once instead of encoded as JSON for each row."""

_TAKE_TURN = "SELECT pg_advisory_xact_lock(hashtext($1))"
"""RelayRecovery's checks take the relays' turn for one transaction; a relay holds it for a whole publishing turn
(_TAKE_SESSION_TURN, the same lock). No row locks: no other relay reads the rows meanwhile."""


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
    carriers = carriers_for(r.causation_id for r in records)
    columns = (
        [r.event_id for r in records],
        [r.event_type for r in records],
        [r.schema_version for r in records],
        [topic_for(r.event_type).name for r in records],
        [r.partition_key for r in records],
        [r.value for r in records],
    )
    distinct = {id(c): c for c in carriers.values()}
    if len(distinct) == 1:
        await conn.execute(_INSERT_ONE_CARRIER, *columns, next(iter(distinct.values())))
    else:
        await conn.execute(_INSERT, *columns, [carriers[r.causation_id] for r in records])


class _InFlight(NamedTuple):
    """A claimed batch handed to the producer: acknowledged once every record batch of it is."""

    last_seq: int
    rows: int
    deliveries: list[tuple["asyncio.Future[RecordMetadata]", int]]
    sent_at: float


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bootstrap_servers: str,
        service: str,
        *,
        batch_size: int = 10_000,
        retention_check_seconds: float = 10.0,
        security: KafkaSecuritySettings | None = None,
    ) -> None:
        """`security`: TLS/SASL of its Kafka clients (the KAFKA_* environment variables if None).

        `batch_size`: most rows one claim takes. A claim takes what is there, so under a light load batches stay
        small; under a heavy one a batch costs the same handful of round trips whatever its size, so the rows a
        batch carries are what keeps the relay up with the load."""
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._service = service
        self._batch_size = batch_size
        self._retention_check_seconds = retention_check_seconds
        self._lock_name = f"sellthrough-outbox-relay:{service}"
        self._wake = asyncio.Event()
        self._claims = OutboxClaims()
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
                if not topics_checked or self.recovery.topics_missing:
                    # After a failure or a republish the broker may be back but empty: recreate the topics before
                    # a send could auto-create one with the broker's default partition count, or land in one the
                    # broker no longer knows, and learn their partitions afresh.
                    self.recovery.topics_missing = False
                    await ensure_topics(self._bootstrap_servers, security=self._security)
                    await producer.client.force_metadata_update()
                    topics_checked = True
                self._wake.clear()
                published = await self.publish_turn(producer)
                backoff = 0.1
            except Exception as error:  # noqa: BLE001 - the relay must outlive any broker or database fault
                # The mark moved only past acknowledged batches, so the rest is sent again: delayed, never lost.
                log.warning("outbox publish failed; retrying", extra={"error": repr(error), "backoff_s": backoff})
                topics_checked = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if time.monotonic() - last_check >= self._retention_check_seconds:
                last_check = time.monotonic()
                # With nothing new to publish no delivery would reveal a broker that lost its data.
                with contextlib.suppress(Exception):
                    await self.recovery.check_broker_retains(offsets)
                await self._read_back()
            elif self.recovery.read_back_due and not published:
                await self._read_back()  # a republish was just published whole: prove it now, not at the next check
            if not published:
                await self._record_backlog()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_poll_seconds)

    async def _read_back(self) -> None:
        try:
            await self.recovery.read_back_if_pending()
        except Exception as error:  # noqa: BLE001 - tried again at the next check
            log.warning("reading the outbox back failed", extra={"error": repr(error)})

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish up to one batch (claim, send, wait, mark) in one turn; returns how many rows were published."""
        return await self.publish_turn(producer, max_batches=1)

    async def publish_turn(self, producer: AIOKafkaProducer, max_batches: int | None = None) -> int:
        """Take the relays' turn and publish until the outbox is drained (or `max_batches` batches); returns how
        many rows were published. The turn is a session advisory lock on one connection, held across batches so
        that the next batch is claimed while the current one is in flight; other relays of the service (and
        RelayRecovery's checks) wait for it, which keeps each key's events in outbox order."""
        async with self._pool.acquire() as conn:
            await conn.execute(_TAKE_SESSION_TURN, self._lock_name)
            try:
                return await self._pipeline(conn, producer, max_batches)
            finally:
                # If the connection broke the lock went with its session; the pool's reset unlocks all anyway.
                with contextlib.suppress(Exception):
                    await conn.execute(_END_SESSION_TURN, self._lock_name)

    async def _pipeline(self, conn: asyncpg.Connection, producer: AIOKafkaProducer, max_batches: int | None) -> int:
        """Claim, send and mark overlap: while batch N is on the wire, batch N-1 is marked and batch N+1 claimed.
        Batch N+1 is sent only once N is acknowledged: the producer retries a failed request before the next one,
        but gives up on it in the end, and a later batch already handed over would then land before N's resend,
        out of order. One batch on the wire at a time keeps each partition's records in outbox order."""
        generation = await self.recovery.mark(conn)
        published, republished = await self._resend(conn, producer, generation)
        if republished:
            return published
        claimed_through: int = await conn.fetchval(_PUBLISHED_THROUGH)
        rows = await self._claims.claim(conn, claimed_through, self._batch_size)
        claims = 0
        on_the_wire: _InFlight | None = None
        while rows or on_the_wire is not None:
            delivered = await _acknowledged(on_the_wire.deliveries) if on_the_wire is not None else {}
            sending = None
            more = False
            if rows:
                sending = _InFlight(
                    rows[-1]["seq"], len(rows), await _send(producer, rows, generation), time.perf_counter()
                )
                claimed_through = rows[-1]["seq"]
                claims += 1
                more = len(rows) == self._batch_size and (max_batches is None or claims < max_batches)
            if on_the_wire is not None:
                async with conn.transaction():
                    if not await self.recovery.delivered(conn, delivered):
                        return published  # queued again from the oldest row kept; the next turn sends it
                    await conn.execute(_MARK, on_the_wire.last_seq)
                published += on_the_wire.rows
                OUTBOX_PUBLISH_SECONDS.labels(self._service).observe(time.perf_counter() - on_the_wire.sent_at)
                OUTBOX_PUBLISHED.labels(self._service).inc(on_the_wire.rows)
            on_the_wire = sending
            rows = await self._claims.claim(conn, claimed_through, self._batch_size) if more else []
        return published

    async def _resend(
        self, conn: asyncpg.Connection, producer: AIOKafkaProducer, generation: bytes
    ) -> tuple[int, bool]:
        """Send again the published rows a read-back could not find (rare, few: no pipelining); returns how many
        were sent and whether a delivery revealed lost records (the outbox is then queued again whole)."""
        sent = 0
        while rows := await conn.fetch(_RESEND, self._batch_size):
            delivered = await _acknowledged(await _send(producer, rows, generation))
            async with conn.transaction():
                if not await self.recovery.delivered(conn, delivered):
                    return sent, True
                await conn.execute("DELETE FROM outbox_resend WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows])
            sent += len(rows)
            OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return sent, False

    async def _take_turn(self, conn: asyncpg.Connection) -> None:
        await conn.execute(_TAKE_TURN, self._lock_name)

    async def _record_backlog(self) -> None:
        # Cheap: a range of the primary key, past the mark.
        count = await self._pool.fetchval(_BACKLOG)
        OUTBOX_BACKLOG.labels(self._service).set(count)


_TAKE_SESSION_TURN = "SELECT pg_advisory_lock(hashtext($1))"
_END_SESSION_TURN = "SELECT pg_advisory_unlock(hashtext($1))"
_PUBLISHED_THROUGH = "SELECT published_through FROM outbox_progress"
_MARK = "UPDATE outbox_progress SET published_through = $1, updated_at = now()"
_RESEND = """
SELECT seq, event_id, event_type, schema_version, topic, partition_key, value, trace_headers
FROM outbox_resend JOIN outbox USING (seq) ORDER BY seq LIMIT $1
"""
_BACKLOG = "SELECT count(*) FROM outbox WHERE seq > (SELECT published_through FROM outbox_progress)"


def _ignore_outcome(delivery: "asyncio.Future[RecordMetadata]") -> None:
    if not delivery.cancelled():
        delivery.exception()


async def _send(
    producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record], generation: bytes
) -> list[tuple["asyncio.Future[RecordMetadata]", int]]:
    """Hand the rows, in their order, to the producer as record batches built here (one per partition, more if
    one fills up); returns each batch's delivery and record count, not waiting for them. Each row goes to the
    partition producer.send() would choose (the default partitioner on its key); building the batches directly
    saves send()'s per-record bookkeeping."""
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
    for queue in batches.values():
        for batch in queue:
            # Complete: a closed batch is sent at once instead of lingering (linger_ms) for records that only
            # send() could add. The relay batches by claim (a batch holds whatever waited while the previous one
            # was on the wire), so lingering would only add latency.
            batch.close()
    deliveries = [
        (await producer.send_batch(batch, topic, partition=partition), batch.record_count())
        for (topic, partition), queue in batches.items()
        for batch in queue
    ]
    for delivery, _ in deliveries:
        # A failure is raised to whoever awaits the delivery; one never awaited (its batch abandoned after an
        # earlier one failed) is collected here rather than reported as never retrieved.
        delivery.add_done_callback(_ignore_outcome)
    return deliveries


async def _acknowledged(deliveries: list[tuple["asyncio.Future[RecordMetadata]", int]]) -> PartitionRanges:
    """Wait for every delivery; the offsets they landed at, per partition."""
    ranges: PartitionRanges = {}
    for delivery, count in deliveries:
        metadata: RecordMetadata = await delivery
        key = (metadata.topic, metadata.partition)
        low, high = ranges.get(key, (metadata.offset, metadata.offset + count))
        ranges[key] = (min(low, metadata.offset), max(high, metadata.offset + count))
    return ranges


_PARTITIONER = DefaultPartitioner()
"""What the relay's producer uses (make_producer sets no other): murmur2 of the key, as the Java client."""
