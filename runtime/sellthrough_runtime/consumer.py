"""Exactly-once effects on top of at-least-once Kafka delivery, without Kafka transactions.

For each polled batch, in one Postgres transaction:
1. records that are not valid events go to `dead_letters` with the reason;
2. event ids are inserted into `processed_events`; ids already there are redeliveries and are skipped;
3. the service's handler applies the new events (projection change);
4. the next offset of every partition in the batch is stored in `consumer_offsets`.
Only then is the batch done. On (re)assignment the consumer seeks to the stored offsets, so a restart
resumes exactly where the last committed transaction ended. If the handler fails on a batch, its events
are retried one by one and the ones that still fail are dead-lettered with the error: never logged and
dropped. Database outages are retried with backoff, never dead-lettered.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from sellthrough_contracts import Envelope, decode_event
from sellthrough_runtime.kafka import make_consumer
from sellthrough_runtime.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_BATCH_SIZE,
    CONSUMER_LAG,
    CONSUMER_SKIPPED_DUPLICATES,
    DEAD_LETTERS,
)
from sellthrough_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]
"""Applies new (never seen before) events to the service's state, inside the caller's transaction."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
)


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    detail: str
    event: Envelope | None = None


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: "ExactlyOnceConsumer") -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Let the batch in flight commit first, so whoever gets these partitions starts after it.
        async with self._owner.batch_lock:
            return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._owner.batch_lock:
            await self._owner.seek_to_stored_offsets(assigned)


class ExactlyOnceConsumer:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        wanted_types: frozenset[str],
        batch_max: int = 2000,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._group_id = group_id
        self._topics = list(topics)
        self._handler = handler
        self._wanted_types = wanted_types
        self._batch_max = batch_max
        self.batch_lock = asyncio.Lock()
        """Held while a batch is applied; rebalance callbacks wait on it so they never seek mid-batch."""

    async def run(self) -> None:
        """Consume until cancelled. The Kafka consumer must not be started yet; this starts and stops it."""
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_SeekToStoredOffsets(self))
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_max)
                records = [record for partition_records in batches.values() for record in partition_records]
                if records:
                    async with self.batch_lock:
                        await self._apply_until_done(records)
                    self._report_lag(batches)
        finally:
            await self._consumer.stop()

    async def seek_to_stored_offsets(self, assigned: Sequence[TopicPartition]) -> None:
        if not assigned:
            return
        stored = await self._stored_offsets()
        ends = await self._consumer.end_offsets(list(assigned))
        for tp in assigned:
            next_offset = stored.get((tp.topic, tp.partition))
            if next_offset is None:
                await self._consumer.seek_to_beginning(tp)
            elif next_offset > ends[tp]:
                # The broker has fewer records than we already applied: it lost its data (memory storage,
                # a recreated topic). Re-read everything; processed_events makes the replay harmless.
                log.warning(
                    "stored offset beyond partition end; re-reading from the beginning",
                    extra={
                        "group": self._group_id,
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "stored": next_offset,
                        "end": ends[tp],
                    },
                )
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, next_offset)
        log.info("partitions assigned", extra={"group": self._group_id, "partitions": [str(tp) for tp in assigned]})

    async def _stored_offsets(self) -> dict[tuple[str, int], int]:
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1", self._group_id
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def _apply_until_done(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1),
            before_sleep=lambda state: log.warning(
                "batch not applied; database unavailable, retrying",
                extra={"group": self._group_id, "error": repr(state.outcome.exception() if state.outcome else None)},
            ),
        ):
            with attempt:
                await self.apply_batch(records)

    async def apply_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        started = time.perf_counter()
        events, dead = self._decode(records)
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await self._claim_new(conn, events)
            dead.extend(await self._apply(conn, fresh))
            await self._store_dead_letters(conn, dead)
            await self._store_offsets(conn, records)
        CONSUMER_BATCH_SIZE.labels(self._group_id).observe(len(records))
        CONSUMER_BATCH_SECONDS.labels(self._group_id).observe(time.perf_counter() - started)
        CONSUMER_SKIPPED_DUPLICATES.labels(self._group_id).inc(len(events) - len(fresh))
        for record, _ in fresh:
            CONSUMER_APPLIED.labels(self._group_id, record.topic, str(record.partition)).inc()
        for letter in dead:
            DEAD_LETTERS.labels(self._group_id, letter.reason).inc()

    def _decode(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[tuple[ConsumerRecord[bytes, bytes], Envelope]], list[DeadLetter]]:
        events: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        dead: list[DeadLetter] = []
        for record in records:
            if record.value is None:
                dead.append(DeadLetter(record, "empty_record", "record has no value"))
                continue
            try:
                event = decode_event(record.value)
            except ValidationError as error:
                reason = "unknown_event_type" if _is_unknown_type(error) else "invalid_event"
                dead.append(DeadLetter(record, reason, _summarise(error)))
                continue
            if event.event_type in self._wanted_types:
                events.append((record, event))
        return events, dead

    async def _claim_new(
        self, conn: asyncpg.Connection, events: list[tuple[ConsumerRecord[bytes, bytes], Envelope]]
    ) -> list[tuple[ConsumerRecord[bytes, bytes], Envelope]]:
        if not events:
            return []
        inserted = await conn.fetch(
            "INSERT INTO processed_events (group_id, event_id) SELECT $1, unnest($2::uuid[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            self._group_id,
            [event.event_id for _, event in events],
        )
        new_ids = {row["event_id"] for row in inserted}
        fresh = []
        for record, event in events:
            if event.event_id in new_ids:
                new_ids.discard(event.event_id)  # a second copy in the same batch is a duplicate too
                fresh.append((record, event))
        return fresh

    async def _apply(
        self, conn: asyncpg.Connection, fresh: list[tuple[ConsumerRecord[bytes, bytes], Envelope]]
    ) -> list[DeadLetter]:
        if not fresh:
            return []
        try:
            async with conn.transaction():
                await self._handler(conn, [event for _, event in fresh])
            return []
        except TRANSIENT_ERRORS:
            raise
        except Exception as batch_error:  # noqa: BLE001 - isolate the event that fails, below
            log.warning(
                "batch failed; applying events one by one", extra={"group": self._group_id, "error": repr(batch_error)}
            )
        dead = []
        for record, event in fresh:
            try:
                async with conn.transaction():
                    await self._handler(conn, [event])
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - recorded with its reason, not dropped
                dead.append(DeadLetter(record, "handler_failed", repr(error), event))
        return dead

    async def _store_dead_letters(self, conn: asyncpg.Connection, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        # A record redelivered after a rebalance is recorded once: (partition, offset, content) is its identity.
        await conn.executemany(
            'INSERT INTO dead_letters (group_id, topic, partition, "offset", event_id, event_type, reason, detail, raw,'
            " raw_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            [
                (
                    self._group_id,
                    d.record.topic,
                    d.record.partition,
                    d.record.offset,
                    d.event.event_id if d.event else None,
                    d.event.event_type if d.event else _header(d.record, "event_type"),
                    d.reason,
                    d.detail,
                    d.record.value,
                    hashlib.sha256(d.record.value or b"").digest(),
                )
                for d in dead
            ],
        )
        for d in dead:
            log.error(
                "dead-lettered",
                extra={
                    "group": self._group_id,
                    "topic": d.record.topic,
                    "partition": d.record.partition,
                    "offset": d.record.offset,
                    "reason": d.reason,
                    "detail": d.detail[:500],
                },
            )

    async def _store_offsets(self, conn: asyncpg.Connection, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), record.offset + 1)
        await conn.executemany(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE "
            "SET next_offset = excluded.next_offset, updated_at = now()",
            [(self._group_id, topic, partition, offset) for (topic, partition), offset in next_offsets.items()],
        )

    def _report_lag(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        for tp, records in batches.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and records:
                CONSUMER_LAG.labels(self._group_id, tp.topic, str(tp.partition)).set(
                    max(highwater - (records[-1].offset + 1), 0)
                )


def _is_unknown_type(error: ValidationError) -> bool:
    return any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in error.errors())


def _summarise(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<event>'}: {e['msg']}" for e in error.errors(include_url=False)
    )[:2000]


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


def consumer_job(
    *,
    pool: asyncpg.Pool,
    settings: ServiceSettings,
    group_id: str,
    topics: Sequence[str],
    handler: Handler,
    wanted_types: frozenset[str],
) -> Callable[[], Awaitable[None]]:
    """A restartable background job: each run builds a fresh Kafka consumer (they cannot be restarted)."""

    async def run() -> None:
        consumer = make_consumer(
            settings.kafka_bootstrap_servers,
            group_id=group_id,
            client_id=group_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
        )
        await ExactlyOnceConsumer(
            pool=pool,
            consumer=consumer,
            group_id=group_id,
            topics=topics,
            handler=handler,
            wanted_types=wanted_types,
            batch_max=settings.consumer_batch_max,
        ).run()

    return run
