"""Exactly-once effects on top of at-least-once Kafka delivery, without Kafka transactions.

Polls batches and hands them to a BatchApplier (applier.py), which stores the projection change, the applied
event ids and the next offsets in one Postgres transaction; offsets are never committed to Kafka. On assignment
partitions are positioned from the stored offsets, so a restart resumes where the last transaction ended.
Surviving a broker that lost or rebuilt its log is ConsumerRecovery's job (log_recovery/); every database call
here, and the stored-offset reads it asks for, waits out a PostgreSQL outage. The rules, and why:
docs/broker-behaviour.md.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from sellthrough_runtime.applier import TRANSIENT_ERRORS, BatchApplier, DecodedBatch, Handler, StoredOffsetsMoved
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.kafka import make_consumer
from sellthrough_runtime.log_recovery import STARVED_SECONDS, Batches, ConsumerRecovery, StoredOffsets, StoredPosition
from sellthrough_runtime.metrics import CONSUMER_LAG
from sellthrough_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

_POSITION_AGAIN_AFTER: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, StoredOffsetsMoved)

_STORED_OFFSETS = (
    "SELECT topic, partition, next_offset, last_record_digest, producer_generations "
    "FROM consumer_offsets WHERE group_id = $1"
)


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance callbacks hold the batch lock, so they run between two batches, never while one is applied."""

    def __init__(self, owner: "ExactlyOnceConsumer") -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Let the batch in flight commit first, so whoever gets these partitions starts after it.
        async with self._owner.batch_lock:
            self._owner.generation += 1  # a batch fetched before now is never applied
            self._owner.forget_lag(revoked)
            self._owner.log_partitions("partitions revoked", revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._owner.batch_lock:
            self._owner.generation += 1
            # Waits out a database outage: aiokafka would swallow an error here and leave the partitions to its
            # offset reset, i.e. a silent re-read from the start.
            await self._owner.recovery.position(assigned)
            self._owner.log_partitions("partitions assigned", assigned)


@dataclass(frozen=True)
class _Fetched:
    generation: int
    """The rebalance generation when the fetch began: the batch may be applied only in the same one."""
    batches: Batches
    decoded: list[DecodedBatch]
    """The batch in parts of whole partitions, each decoded (and prepared) on its own: one transaction each."""
    end_offsets: dict[tuple[str, int], int]


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
        member: str | None = None,
        starved_after_seconds: float = STARVED_SECONDS,
        synchronous_commit: bool = True,
        parallel_transactions: int = 1,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._group_id = group_id
        self.member = member or group_id
        """Names this member in logs: a process may run several members of one group."""
        self._topics = list(topics)
        self._batch_max = batch_max
        self._synchronous_commit = synchronous_commit
        self._parallel = parallel_transactions if not synchronous_commit else 1
        """Transactions a batch is applied in at once, each with whole partitions (so with their own offsets). Only
        with asynchronous commit, whose recovery (positioning every partition again from the stored offsets) is
        right whichever of them committed; with synchronous commit a failed batch is retried whole."""
        self._known_offsets: dict[tuple[str, int], int] = {}
        """The next offsets stored, as last read or written by this member: with asynchronous commit a batch checks
        them (a crash that lost commits shows as stored offsets behind these)."""
        self._applier = BatchApplier(
            pool=pool,
            group_id=group_id,
            handler=handler,
            wanted_types=wanted_types,
            synchronous_commit=synchronous_commit,
        )
        self.recovery = ConsumerRecovery(
            consumer,
            self._stored_offsets,
            group_id=group_id,
            member=self.member,
            starved_after_seconds=starved_after_seconds,
        )
        self.batch_lock = asyncio.Lock()
        """Held while a batch is applied; rebalance callbacks wait on it so they never seek mid-batch."""
        self.generation = 0
        """Rebalance callbacks run so far (changed only under batch_lock)."""

    async def run(self) -> None:
        """Consume until cancelled. The Kafka consumer must not be started yet; this starts and stops it.

        The next batch is fetched and decoded while the current one's transaction runs. A rebalance in between
        makes it stale (it may hold records of partitions now consumed elsewhere, or read before a seek): each
        fetch carries the rebalance generation it began in, and a batch of an older one is dropped."""
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_SeekToStoredOffsets(self))
        fetching: asyncio.Task[_Fetched] | None = None
        try:
            fetching = asyncio.create_task(self._fetch(self.generation))
            while True:
                fetched = await fetching
                fetching = None
                async with self.batch_lock:
                    if fetched.generation != self.generation:
                        await self._drop_stale(fetched)
                        fetching = asyncio.create_task(self._fetch(self.generation))
                        continue
                    batches = await self.recovery.screen(fetched.batches)
                    parts = [part for part in (_kept(decoded, batches) for decoded in fetched.decoded) if part.records]
                    # Fetched and decoded while this batch is applied; created under the lock, so in this
                    # generation: a rebalance callback can only run once this batch is committed.
                    fetching = asyncio.create_task(self._fetch(self.generation))
                    if parts and await self._apply(parts, fetched.end_offsets):
                        self.recovery.applied(batches)
                if parts:
                    self._report_lag(batches, fetched.end_offsets)
        finally:
            if fetching is not None:
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetching
            await self._consumer.stop()

    async def _fetch(self, generation: int) -> _Fetched:
        batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_max)
        decoded = [
            self._applier.decode([record for tp in group for record in batches[tp]])
            for group in _split(batches, self._parallel)
        ]
        return _Fetched(generation, batches, decoded, self._end_offsets(batches))

    async def _drop_stale(self, fetched: _Fetched) -> None:
        """A rebalance ran while this batch was fetched: its partitions that are still ours are positioned again
        (nothing is in flight, so their stored offsets are exact); the others are someone else's now."""
        assigned = self._consumer.assignment()
        mine = [tp for tp, records in fetched.batches.items() if records and tp in assigned]
        log.info(
            "batch fetched across a rebalance dropped",
            extra={
                "group": self._group_id,
                "records": sum(len(decoded.records) for decoded in fetched.decoded),
                "partitions": [str(tp) for tp in mine],
            },
        )
        await self.recovery.position(mine)

    def _until_database_answers(self, what: str) -> AsyncRetrying:
        """Retries a database call through an outage (TRANSIENT_ERRORS) with backoff, for as long as it lasts."""

        def warn(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "database unavailable, retrying", extra={"group": self._group_id, "waiting": what, "error": repr(error)}
            )

        return AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1),
            before_sleep=warn,
        )

    async def _stored_offsets(self) -> StoredOffsets:
        async for attempt in self._until_database_answers("stored offsets not read"):
            with attempt:
                rows = await self._pool.fetch(_STORED_OFFSETS, self._group_id)
        self._known_offsets = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return {
            (r["topic"], r["partition"]): StoredPosition(
                r["next_offset"], r["last_record_digest"], r["producer_generations"]
            )
            for r in rows
        }

    async def _apply(self, parts: list[DecodedBatch], end_offsets: dict[tuple[str, int], int]) -> bool:
        """Apply a batch; whether it was. With synchronous commit an outage is waited out and the batch applied
        then. With asynchronous commit the outage may have been a crash that lost this member's last commits, so
        the batch is not retried: once the database answers, every assigned partition is positioned again from
        the offsets that survived (and the batch being fetched, read from the old positions, is dropped as stale).
        A batch also checks the stored offsets of its partitions first, for a crash this member never saw fail a
        call (between two batches, the pool reconnecting quietly). The parts (whole partitions each) are applied
        in transactions of their own at once: they touch different keys (events are keyed by distributor), and
        whichever of them committed, positioning again from the stored offsets is right."""
        if self._synchronous_commit:
            for part in parts:
                await self._apply_until_done(part, end_offsets)
            return True
        outcomes = await asyncio.gather(
            *(
                self._applier.apply_decoded(part, end_offsets, self.recovery.generations, self._known_offsets)
                for part in parts
            ),
            return_exceptions=True,
        )
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for part, outcome in zip(parts, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                for record in part.records:  # in offset order per partition, as _store_offsets stores the last
                    self._known_offsets[(record.topic, record.partition)] = record.offset + 1
        if not failed:
            return True
        for error in failed:
            if not isinstance(error, _POSITION_AGAIN_AFTER):
                raise error
        log.warning(
            "batch not applied; positioning again from the stored offsets",
            extra={"group": self._group_id, "member": self.member, "error": repr(failed[0])[:500]},
        )
        self.generation += 1
        await self.recovery.position(list(self._consumer.assignment()))
        return False

    async def _apply_until_done(self, batch: DecodedBatch, end_offsets: dict[tuple[str, int], int]) -> None:
        async for attempt in self._until_database_answers("batch not applied"):
            with attempt:
                await self._applier.apply_decoded(batch, end_offsets, self.recovery.generations)

    def _end_offsets(self, batches: Batches) -> dict[tuple[str, int], int]:
        ends = {}
        for tp in batches:
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                ends[(tp.topic, tp.partition)] = highwater
        return ends

    def log_partitions(self, message: str, partitions: Sequence[TopicPartition]) -> None:
        log.info(
            message,
            extra={"group": self._group_id, "member": self.member, "partitions": [str(tp) for tp in partitions]},
        )

    def forget_lag(self, revoked: Sequence[TopicPartition]) -> None:
        """Partitions now consumed elsewhere: their lag is another member's to report, not a stale value here."""
        for tp in revoked:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self._group_id, tp.topic, str(tp.partition))

    def _report_lag(self, batches: Batches, end_offsets: dict[tuple[str, int], int]) -> None:
        for tp, records in batches.items():
            end = end_offsets.get((tp.topic, tp.partition))
            if end is not None and records:
                CONSUMER_LAG.labels(self._group_id, tp.topic, str(tp.partition)).set(
                    max(end - (records[-1].offset + 1), 0)
                )


def _split(batches: Batches, parts: int) -> list[list[TopicPartition]]:
    """The batch's partitions in at most `parts` groups of about as many records each (largest first, each to the
    lightest group so far)."""
    if parts == 1:
        return [list(batches)] if batches else []  # the order the client returned them in
    groups: list[list[TopicPartition]] = [[] for _ in range(parts)]
    sizes = [0] * parts
    for tp in sorted(batches, key=lambda tp: len(batches[tp]), reverse=True):
        lightest = sizes.index(min(sizes))
        groups[lightest].append(tp)
        sizes[lightest] += len(batches[tp])
    return [group for group in groups if group]


def _kept(decoded: DecodedBatch, kept: Batches) -> DecodedBatch:
    """A part of a fetched batch reduced to what ConsumerRecovery.screen kept of its partitions."""
    mine = {(record.topic, record.partition) for record in decoded.records}
    return decoded.only(records for tp, records in kept.items() if (tp.topic, tp.partition) in mine)


def consumer_job(
    *,
    pool: asyncpg.Pool,
    settings: ServiceSettings,
    group_id: str,
    topics: Sequence[str],
    handler: Handler,
    wanted_types: frozenset[str],
    client_id: str | None = None,
    synchronous_commit: bool = True,
    parallel_transactions: int = 1,
) -> Callable[[], Awaitable[None]]:
    """A restartable background job: each run builds a fresh Kafka consumer (they cannot be restarted).
    `synchronous_commit=False` only where nothing leaves the database from the batch's writes (applier.py)."""

    async def run() -> None:
        consumer = make_consumer(
            settings.kafka_bootstrap_servers,
            group_id=group_id,
            client_id=client_id or group_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            security=settings,
        )
        await ExactlyOnceConsumer(
            pool=pool,
            consumer=consumer,
            group_id=group_id,
            topics=topics,
            handler=handler,
            wanted_types=wanted_types,
            batch_max=settings.consumer_batch_max,
            member=client_id,
            synchronous_commit=synchronous_commit,
            parallel_transactions=parallel_transactions,
        ).run()

    return run


def job_of(
    spec: ConsumerSpec, pool: asyncpg.Pool, settings: ServiceSettings, *, client_id: str | None = None
) -> Callable[[], Awaitable[None]]:
    """The live consumer job of a service's ConsumerSpec (the same spec a dead-letter replay uses)."""
    return consumer_job(
        pool=pool,
        settings=settings,
        group_id=spec.group_id,
        topics=spec.topics,
        handler=spec.handler(settings),
        wanted_types=spec.wanted_types,
        client_id=client_id,
    )
