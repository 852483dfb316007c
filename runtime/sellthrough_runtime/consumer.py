"""Exactly-once effects on top of at-least-once Kafka delivery, without Kafka transactions.

The Kafka side of a consumer: polls batches and hands them to a BatchApplier (applier.py), which stores the
projection change, the applied event ids and the next offsets in one Postgres transaction. On (re)assignment
the consumer seeks to the stored offsets, so a restart resumes exactly where the last committed transaction
ended. Offsets are never committed to Kafka.

A stored offset is only meaningful on the log it was read from. If the broker lost its data and the outbox
relays republished it, the same offsets hold other records; so on (re)assignment the consumer first re-reads
the last record it applied on each partition and compares its digest: a mismatch (or no record there at all)
sends it back to the beginning, and processed_events makes the replay harmless. An end offset below the stored
offset proves nothing on its own: Tansu reports the start of a partition's last record batch as its end, and
answers a fetch beyond the end with no records rather than an error. So a partition that seems to end early is
re-read from the start only if its last applied record does not arrive within a few fetches.
A consumer may also go on fetching from its position on the rebuilt log before it rejoins its group, and
skip records the rebuilt log holds below that position. Every record carries its outbox's generation,
raised by each republish (outbox.py): a partition showing a service's generation above the highest seen
there from that service is re-read from the beginning too. The generations seen are stored with the offsets.

A partition can also go quiet while records wait in it: the consumer's position ended up somewhere the broker
serves nothing from, or the client's own fetch state for it is stuck. That is never silent: a partition that
delivers nothing for a while although its end lies beyond the stored offset is read again from the stored
offset (re-verifying the last applied record) and, if it starves again without any progress, from the start.
A quiet partition whose end lies before the stored offset has its last applied record checked again, as on
assignment: a log rebuilt shorter than the position of a consumer that never rejoined its group shows no other
sign.

Database outages are retried with backoff, never dead-lettered.

The next batch is fetched and decoded while the current one's transaction runs. A rebalance in between makes
that batch stale: it may hold records of partitions now consumed elsewhere, or read before a seek. Each
fetch carries the rebalance generation it started in, and a batch is applied only if no rebalance
callback ran since (the callbacks hold the batch lock, so they can only run between two batches); a stale
batch is dropped and its partitions that are still ours go back to their stored offsets.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from sellthrough_runtime.applier import TRANSIENT_ERRORS, BatchApplier, DecodedBatch, Handler, record_digest
from sellthrough_runtime.kafka import make_consumer
from sellthrough_runtime.metrics import CONSUMER_LAG, CONSUMER_REREADS
from sellthrough_runtime.outbox import GENERATION_HEADER
from sellthrough_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

_STARVED_SECONDS = 15.0
_STARVED_FETCHES = 10
"""How long (and over how many fetches) a partition may deliver nothing while its end lies beyond the stored
offset, before the consumer reads it again."""

_MISSING_RECORD_WAIT_SECONDS = 5.0
_MISSING_RECORD_WAIT_FETCHES = 5
"""How long (and over how many fetches) the last applied record may fail to arrive from a partition that seems
to end before it, before the consumer believes the partition lost it."""


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
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
            await self._owner.seek_to_stored_offsets(assigned)
            self._owner.log_partitions("partitions assigned", assigned)


Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True)
class _Fetched:
    generation: int
    """The rebalance generation when the fetch began: the batch may be applied only in the same one."""
    batches: Batches
    decoded: DecodedBatch
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
        starved_after_seconds: float = _STARVED_SECONDS,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._group_id = group_id
        self.member = member or group_id
        """Names this member in logs: a process may run several members of one group."""
        self._topics = list(topics)
        self._batch_max = batch_max
        self._applier = BatchApplier(pool=pool, group_id=group_id, handler=handler, wanted_types=wanted_types)
        self.batch_lock = asyncio.Lock()
        """Held while a batch is applied; rebalance callbacks wait on it so they never seek mid-batch."""
        self.generation = 0
        """Rebalance callbacks run so far (changed only under batch_lock)."""
        self._to_verify: dict[TopicPartition, tuple[int, bytes]] = {}
        """Partitions just assigned: the offset and digest of the last record applied there."""
        self._seemingly_short: dict[TopicPartition, tuple[float, int]] = {}
        """Partitions whose reported end is below the stored offset: deadline and fetches left for the record."""
        self._generations: dict[tuple[str, int], dict[str, int]] = {}
        """Per assigned partition, the highest outbox generation seen there from each publishing service."""
        self._fetches = 0
        self._starved_after_seconds = starved_after_seconds
        self._last_delivery: dict[TopicPartition, tuple[float, int]] = {}
        """Per assigned partition, when (clock, fetch count) it last delivered records or was positioned."""
        self._starved_at: dict[TopicPartition, int] = {}
        """Partitions found starving: the stored offset then, to tell a second starvation without progress."""
        self._rewound: set[TopicPartition] = set()
        """Partitions sent back to their start since records of theirs were last applied: their stored offset
        belongs to the log they were rewound from."""

    async def run(self) -> None:
        """Consume until cancelled. The Kafka consumer must not be started yet; this starts and stops it."""
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
                    await self._revive_starved(fetched.batches)
                    batches, batch = await self._verified(fetched)
                    # Fetched and decoded while this batch is applied; created under the lock, so in this
                    # generation: a rebalance callback can only run once this batch is committed.
                    fetching = asyncio.create_task(self._fetch(self.generation))
                    if batch.records:
                        await self._apply_until_done(batch, fetched.end_offsets)
                        self._rewound.difference_update(tp for tp, records in batches.items() if records)
                if batch.records:
                    self._report_lag(batches, fetched.end_offsets)
        finally:
            if fetching is not None:
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetching
            await self._consumer.stop()

    async def _fetch(self, generation: int) -> _Fetched:
        batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_max)
        records = [record for partition_records in batches.values() for record in partition_records]
        return _Fetched(generation, batches, self._applier.decode(records), self._end_offsets(batches))

    async def _drop_stale(self, fetched: _Fetched) -> None:
        """A rebalance ran while this batch was fetched: its partitions that are still ours are read again from
        their stored offsets (nothing is in flight, so those are exact); the others are someone else's now."""
        assigned = self._consumer.assignment()
        mine = [tp for tp, records in fetched.batches.items() if records and tp in assigned]
        log.info(
            "batch fetched across a rebalance dropped",
            extra={
                "group": self._group_id,
                "records": len(fetched.decoded.records),
                "partitions": [str(tp) for tp in mine],
            },
        )
        await self.seek_to_stored_offsets(mine)

    async def seek_to_stored_offsets(self, assigned: Sequence[TopicPartition]) -> None:
        if not assigned:
            return
        stored = await self._stored_offsets()
        ends = await self._consumer.end_offsets(list(assigned))
        for tp in assigned:
            self._to_verify.pop(tp, None)
            self._seemingly_short.pop(tp, None)
            self._rewound.discard(tp)
            self._last_delivery[tp] = (time.monotonic(), self._fetches)
            next_offset, digest, generations = stored.get((tp.topic, tp.partition), (None, None, {}))
            self._generations[(tp.topic, tp.partition)] = dict(generations)
            if next_offset is None:
                await self._consumer.seek_to_beginning(tp)
            elif digest is not None and next_offset > 0:
                self._to_verify[tp] = (next_offset - 1, digest)
                self._consumer.seek(tp, next_offset - 1)
                if next_offset > ends[tp]:
                    wait = (time.monotonic() + _MISSING_RECORD_WAIT_SECONDS, _MISSING_RECORD_WAIT_FETCHES)
                    self._seemingly_short[tp] = wait
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
                await self._rewind(tp)
            else:
                self._consumer.seek(tp, next_offset)

    async def _rewind(self, tp: TopicPartition, reason: str = "log_rebuilt") -> None:
        """Read the partition again from its start (processed_events makes the replay harmless)."""
        CONSUMER_REREADS.labels(self._group_id, tp.topic, reason).inc()
        self._to_verify.pop(tp, None)
        self._seemingly_short.pop(tp, None)
        self._rewound.add(tp)
        self._last_delivery[tp] = (time.monotonic(), self._fetches)
        await self._consumer.seek_to_beginning(tp)

    async def _verified(self, fetched: _Fetched) -> tuple[Batches, DecodedBatch]:
        """The batch without the re-read last record of each newly assigned partition, if it is the one applied
        there. If it is not, or a record shows a higher outbox generation than seen before on its partition, the
        log was rebuilt: the batch's records of that partition are dropped and the partition is read from the
        start. (A consumer reading a partition from the start may meet a generation change in a log that was
        never rebuilt under it, and so re-read it once more: harmless, and rare.)"""
        if self._seemingly_short:
            await self._rewind_if_last_record_missing(fetched.batches)
        kept = {}
        for tp, records in fetched.batches.items():
            if records and self._generation_raised(tp, records) and records[0].offset != 0:
                await self._rewind(tp)
                continue
            expected = self._to_verify.pop(tp, None)
            if expected is None or not records:
                kept[tp] = records
                continue
            offset, digest = expected
            first = records[0]
            if first.offset == offset and record_digest(first) == digest:
                kept[tp] = records[1:]
                continue
            log.warning(
                "partition no longer holds the last record applied; re-reading it from the beginning",
                extra={"group": self._group_id, "topic": tp.topic, "partition": tp.partition, "offset": offset},
            )
            if first.offset == 0:
                kept[tp] = records  # already at the beginning: these are the records to apply
            else:
                await self._rewind(tp)
        records = [record for partition_records in kept.values() for record in partition_records]
        decoded = fetched.decoded
        if len(records) != len(decoded.records):
            ids = {id(record) for record in records}
            decoded = DecodedBatch(
                records,
                [(record, event) for record, event in decoded.events if id(record) in ids],
                [letter for letter in decoded.dead if id(letter.record) in ids],
            )
        return kept, decoded

    async def _rewind_if_last_record_missing(self, batches: Batches) -> None:
        """Partitions that seemed to end before their last applied record: forget those the record came from, and
        re-read from the beginning those it still has not come from after the wait."""
        now = time.monotonic()
        for tp, (deadline, fetches_left) in list(self._seemingly_short.items()):
            if batches.get(tp):
                del self._seemingly_short[tp]
            elif now < deadline or fetches_left > 1:
                self._seemingly_short[tp] = (deadline, fetches_left - 1)
            else:
                offset, _ = self._to_verify.get(tp, (None, None))
                log.warning(
                    "partition no longer holds the last record applied; re-reading it from the beginning",
                    extra={"group": self._group_id, "topic": tp.topic, "partition": tp.partition, "offset": offset},
                )
                await self._rewind(tp)

    async def _revive_starved(self, batches: Batches) -> None:
        """Partitions that delivered nothing for a while: those whose end lies beyond the stored offset are read
        again, from the stored offset the first time, from the start if one starves again at the same offset;
        those whose end lies before it have their last applied record checked, as on assignment (the log may have
        been rebuilt shorter than this consumer's position while it never rejoined its group, and a fetch beyond
        the end returns nothing)."""
        self._fetches += 1
        now = time.monotonic()
        quiet = []
        for tp in self._consumer.assignment():
            if batches.get(tp) or tp in self._seemingly_short:  # the latter has a wait of its own
                self._last_delivery[tp] = (now, self._fetches)
                continue
            since, fetches = self._last_delivery.setdefault(tp, (now, self._fetches))
            if now - since >= self._starved_after_seconds and self._fetches - fetches >= _STARVED_FETCHES:
                quiet.append(tp)
        if not quiet:
            return
        for tp in quiet:
            self._last_delivery[tp] = (now, self._fetches)
        try:
            stored = await self._stored_offsets()
            ends = await self._consumer.end_offsets(quiet)
        except (KafkaError, *TRANSIENT_ERRORS) as error:
            log.info("quiet partitions not checked", extra={"group": self._group_id, "error": repr(error)})
            return
        for tp in quiet:
            next_offset = stored.get((tp.topic, tp.partition), (0, None, {}))[0]
            if ends[tp] == next_offset:
                continue  # at the end
            if ends[tp] < next_offset:
                if tp not in self._rewound:
                    # Routine on Tansu, which understates ends (the last applied record is then simply there).
                    log.debug("quiet partition ends before its stored offset; checking its last applied record")
                    await self.seek_to_stored_offsets([tp])
                continue
            again = self._starved_at.get(tp) == next_offset
            self._starved_at[tp] = next_offset
            log.warning(
                "partition delivers nothing although records wait; reading it again"
                + (" from the beginning" if again else " from the stored offset"),
                extra={
                    "group": self._group_id,
                    "member": self.member,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "stored": next_offset,
                    "end": ends[tp],
                },
            )
            self._consumer.resume(tp)  # never paused here; but a paused partition would starve just so
            if again:
                await self._rewind(tp, "starved_again")
            else:
                CONSUMER_REREADS.labels(self._group_id, tp.topic, "starved").inc()
                await self.seek_to_stored_offsets([tp])

    def _generation_raised(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Note the outbox generations in these records; whether one is above what was seen from its service
        on this partition before (so the log was rebuilt under this consumer)."""
        seen = self._generations.setdefault((tp.topic, tp.partition), {})
        raised = False
        for record in records:
            for name, value in record.headers:
                if name != GENERATION_HEADER:
                    continue
                service, _, number = value.decode(errors="replace").rpartition(":")
                generation = int(number) if number.isdigit() else 0
                known = seen.get(service)
                if known is None or generation > known:
                    seen[service] = generation
                    if known is not None:
                        raised = True
                        log.warning(
                            "partition rebuilt by a republished outbox; re-reading it from the beginning",
                            extra={
                                "group": self._group_id,
                                "topic": tp.topic,
                                "partition": tp.partition,
                                "offset": record.offset,
                                "publisher": service,
                                "generation": generation,
                            },
                        )
                break
        return raised

    async def _stored_offsets(self) -> dict[tuple[str, int], tuple[int, bytes | None, dict[str, int]]]:
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset, last_record_digest, producer_generations "
            "FROM consumer_offsets WHERE group_id = $1",
            self._group_id,
        )
        return {
            (r["topic"], r["partition"]): (r["next_offset"], r["last_record_digest"], r["producer_generations"])
            for r in rows
        }

    def _end_offsets(self, batches: Batches) -> dict[tuple[str, int], int]:
        ends = {}
        for tp in batches:
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                ends[(tp.topic, tp.partition)] = highwater
        return ends

    async def _apply_until_done(self, batch: DecodedBatch, end_offsets: dict[tuple[str, int], int]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1),
            before_sleep=lambda state: log.warning(
                "batch not applied; database unavailable, retrying",
                extra={"group": self._group_id, "error": repr(state.outcome.exception() if state.outcome else None)},
            ),
        ):
            with attempt:
                await self._applier.apply_decoded(batch, end_offsets, self._generations)

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


def consumer_job(
    *,
    pool: asyncpg.Pool,
    settings: ServiceSettings,
    group_id: str,
    topics: Sequence[str],
    handler: Handler,
    wanted_types: frozenset[str],
    client_id: str | None = None,
) -> Callable[[], Awaitable[None]]:
    """A restartable background job: each run builds a fresh Kafka consumer (they cannot be restarted)."""

    async def run() -> None:
        consumer = make_consumer(
            settings.kafka_bootstrap_servers,
            group_id=group_id,
            client_id=client_id or group_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
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
        ).run()

    return run
