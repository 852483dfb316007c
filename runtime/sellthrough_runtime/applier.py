"""One consumed batch, applied exactly once, in one Postgres transaction: invalid records dead-lettered, event
ids claimed in `processed_events` (redeliveries skipped), the handler's change, the partitions' next offsets in
`consumer_offsets`. A failing batch is retried event by event and what still fails is dead-lettered (and its
claim released); database outages (TRANSIENT_ERRORS) propagate, for the caller to retry the whole batch.
Decoding is pure, so it runs ahead (`decode`) while the previous batch commits. Details: docs/broker-behaviour.md.
"""

import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

import asyncpg
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from sellthrough_contracts import EVENT_TYPES, Envelope, decode_event
from sellthrough_contracts.topics import DERIVED_EVENT_TYPES, TOPICS, topic_for
from sellthrough_runtime.log_recovery import record_digest
from sellthrough_runtime.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_BATCH_SIZE,
    CONSUMER_SKIPPED_DUPLICATES,
    DEAD_LETTERS,
    PROJECTION_FRESHNESS,
)
from sellthrough_runtime.tracing import ProducerContexts, applying, context_from_kafka, tracer, tracing_enabled

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]
"""Applies new (never seen before) events to the service's state, inside the caller's transaction."""


@runtime_checkable
class PreparingHandler(Protocol):
    """A Handler in two parts, so that its pure part runs before the transaction, while the previous batch's
    commits: `prepare(events)` turns events into what to write without touching the database (or any state that
    a write changes), and `write(conn, prepare(events))` does exactly what `handler(conn, events)` does.

    A batch is prepared when it is decoded, assuming all its events are new; if some turn out to be
    redeliveries, or preparing fails, the handler is called with the new events instead."""

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None: ...

    def prepare(self, events: Sequence[Envelope]) -> object: ...

    async def write(self, conn: asyncpg.Connection, prepared: Any) -> None: ...


@runtime_checkable
class DecodingHandler(Protocol):
    """A Handler that reads its records itself (query-api: msgspec structs for trusted topics). `decode_event`
    returns what the handler applies, or raises pydantic's ValidationError as `decode_event` does for a record to
    dead-letter."""

    def decode_event(self, raw: bytes, /) -> Envelope: ...


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
    # As problems.DATABASE_UNAVAILABLE (a test keeps them together): else met in a handler call during an outage
    # they would dead-letter its events as handler failures.
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    detail: str
    event: Envelope | None = None


@dataclass(frozen=True)
class Reapplied:
    """What applying one stored record again did: `applied`; `already_applied` (its event id is in
    processed_events: applied since, e.g. from a redelivery); `not_wanted` (a valid event of a type this consumer
    does not apply); or `failed`, with the dead letter it would be now."""

    outcome: Literal["applied", "already_applied", "not_wanted", "failed"]
    letter: DeadLetter | None = None


@dataclass(frozen=True)
class DecodedBatch:
    """A batch's records, its events of wanted types and its undecodable records, as `decode` found them."""

    records: Sequence[ConsumerRecord[bytes, bytes]]
    events: list[tuple[ConsumerRecord[bytes, bytes], Envelope]]
    dead: list[DeadLetter]
    prepared: object | None = None
    """The handler's prepared writes for all `events`, if it is a PreparingHandler and preparing succeeded."""

    def only(self, kept: Iterable[Sequence[ConsumerRecord[bytes, bytes]]]) -> "DecodedBatch":
        """This batch reduced to the kept records (per partition, as ConsumerRecovery.screen returns them); what was
        prepared for all its events no longer fits a part of them."""
        records = [record for partition_records in kept for record in partition_records]
        if len(records) == len(self.records):
            return self
        ids = {id(record) for record in records}
        return DecodedBatch(
            records,
            [(record, event) for record, event in self.events if id(record) in ids],
            [letter for letter in self.dead if id(letter.record) in ids],
        )


class Freshness:
    """Seconds since the newest applied event happened (occurred_at) and was accepted (recorded_at), read at
    scrape time so the gauges keep growing while nothing arrives."""

    _by_group: "dict[str, Freshness]" = {}

    @classmethod
    def of(cls, group_id: str) -> "Freshness":
        """The group's tracker, shared by the members of a group that run in one process (one gauge each)."""
        if group_id not in cls._by_group:
            cls._by_group[group_id] = cls(group_id)
        return cls._by_group[group_id]

    def __init__(self, group_id: str) -> None:
        self._newest: dict[str, float] = {}
        for clock in ("occurred", "recorded"):
            PROJECTION_FRESHNESS.labels(group_id, clock).set_function(functools.partial(self._age, clock))

    def _age(self, clock: str) -> float:
        newest = self._newest.get(clock)
        return time.time() - newest if newest is not None else float("nan")

    def saw(self, events: Sequence[Envelope]) -> None:
        for clock, stamps in (
            ("occurred", [e.occurred_at for e in events]),
            ("recorded", [e.recorded_at for e in events if e.recorded_at is not None]),
        ):
            if stamps:
                self._newest[clock] = max(self._newest.get(clock, 0.0), max(stamps).timestamp())


class StoredOffsetsMoved(Exception):
    """The stored offsets of a batch's partitions are not the ones this consumer last stored or read: a crash lost
    asynchronous commits (or another writer stored some). The batch is rolled back; the consumer must position its
    partitions from the stored offsets again before applying anything."""


ExpectedOffsets = Mapping[tuple[str, int], int | None]
"""Per partition, the next offset the consumer believes is stored (None: no row stored)."""

ASYNCHRONOUS_COMMIT = "SET LOCAL synchronous_commit = off"
"""For a transaction whose effects only this database holds (a projection): it commits without waiting for its
WAL to reach disk. A crash may lose a suffix of such commits, whole and in WAL order, offsets with the state they
describe, so the consumer re-reads from the offsets that survived. Never for a service whose transaction writes an
outbox a relay publishes from (the relay could publish rows a crash then loses). Why it holds for query-api:
docs/architecture.md, "Asynchronous commit of the projections"."""


class BatchApplier:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        group_id: str,
        handler: Handler,
        wanted_types: frozenset[str],
        synchronous_commit: bool = True,
    ) -> None:
        self._pool = pool
        self._synchronous_commit = synchronous_commit
        self._group_id = group_id
        self._handler = handler
        self._wanted_types = wanted_types
        self._freshness = Freshness.of(group_id)
        self._decode_event = handler.decode_event if isinstance(handler, DecodingHandler) else decode_event

    async def apply_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], end_offsets: Mapping[tuple[str, int], int] | None = None
    ) -> None:
        await self.apply_decoded(self.decode(records), end_offsets)

    def decode(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> DecodedBatch:
        """Decode (and, for a PreparingHandler, prepare) a batch: pure, so it may run before the batch's turn."""
        events, dead = self._decode(records)
        prepared = None
        if events and isinstance(self._handler, PreparingHandler):
            try:
                prepared = self._handler.prepare([event for _, event in events])
            except Exception:
                # Not fatal here: the handler is called with the events in the transaction, fails there, and
                # its events are isolated and dead-lettered as for any handler failure.
                log.warning("preparing a batch failed", extra={"group": self._group_id}, exc_info=True)
        return DecodedBatch(records, events, dead, prepared)

    async def apply_decoded(
        self,
        batch: DecodedBatch,
        end_offsets: Mapping[tuple[str, int], int] | None = None,
        generations: Mapping[tuple[str, int], Mapping[str, int]] | None = None,
        expected_offsets: ExpectedOffsets | None = None,
    ) -> None:
        """Apply a batch and store, with its effects, the next offset of each partition in it (and, if given, the
        outbox generations the consumer has seen there, see log_recovery/). With `expected_offsets`, the stored
        offsets of the batch's partitions are checked against them first (StoredOffsetsMoved)."""
        started = time.perf_counter()
        records, events, dead = batch.records, batch.events, list(batch.dead)
        traced = tracing_enabled()
        with contextlib.ExitStack() as spans:
            async with self._pool.acquire() as conn, conn.transaction():
                if expected_offsets is not None:  # sets the commit mode too: one round trip
                    await self._check_stored_offsets(conn, records, expected_offsets)
                elif not self._synchronous_commit:
                    await conn.execute(ASYNCHRONOUS_COMMIT)
                fresh = await self._claim_new(conn, events)
                contexts: Mapping[UUID, Context]
                if traced:
                    contexts = {e.event_id: spans.enter_context(self._span(record, e)) for record, e in fresh}
                else:
                    # No spans to record: derived events still carry their cause's trace context onward.
                    contexts = ProducerContexts({event.event_id: record.headers for record, event in fresh})
                # Prepared for all the batch's events: usable if none was a redelivery.
                prepared = batch.prepared if len(fresh) == len(events) else None
                with applying(contexts):
                    failed = await self._apply(conn, fresh, prepared)
                await self._release(conn, failed)
                dead.extend(failed)
                await self._store_dead_letters(conn, dead)
                await self._store_offsets(conn, records, end_offsets or {}, generations)
        self._freshness.saw([event for _, event in fresh])
        CONSUMER_BATCH_SIZE.labels(self._group_id).observe(len(records))
        CONSUMER_BATCH_SECONDS.labels(self._group_id).observe(time.perf_counter() - started)
        CONSUMER_SKIPPED_DUPLICATES.labels(self._group_id).inc(len(events) - len(fresh))
        applied: dict[tuple[str, int], int] = {}
        for record, _ in fresh:
            applied[(record.topic, record.partition)] = applied.get((record.topic, record.partition), 0) + 1
        for (topic, partition), count in applied.items():
            CONSUMER_APPLIED.labels(self._group_id, topic, str(partition)).inc(count)
        for letter in dead:
            DEAD_LETTERS.labels(self._group_id, letter.reason).inc()

    @contextlib.contextmanager
    def _span(self, record: ConsumerRecord[bytes, bytes], event: Envelope) -> Iterator[Context]:
        """A consumer span per applied event, child of the span that produced it (from the Kafka headers);
        it covers the batch transaction the event was applied in."""
        with tracer.start_as_current_span(
            f"apply {event.event_type}",
            context=context_from_kafka(record.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.consumer.group.name": self._group_id,
                "messaging.destination.name": record.topic,
                "messaging.kafka.offset": record.offset,
                "sellthrough.event_id": str(event.event_id),
            },
            end_on_exit=True,
        ) as span:
            yield trace.set_span_in_context(span)

    def _decode(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[tuple[ConsumerRecord[bytes, bytes], Envelope]], list[DeadLetter]]:
        events: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        dead: list[DeadLetter] = []
        wanted = self._wanted_types
        for record in records:
            if record.value is None:
                dead.append(DeadLetter(record, "empty_record", "record has no value"))
                continue
            if _unwanted(record, wanted):
                continue
            try:
                event = self._decode_event(record.value)
            except ValidationError as error:
                reason = "unknown_event_type" if _is_unknown_type(error) else "invalid_event"
                dead.append(DeadLetter(record, reason, _summarise(error)))
                continue
            if (misplaced := _misplaced(record, event)) is not None:
                dead.append(DeadLetter(record, "wrong_topic", misplaced))
                continue
            if event.event_type in wanted:
                events.append((record, event))
        return events, dead

    async def _check_stored_offsets(
        self,
        conn: asyncpg.Connection,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        expected: ExpectedOffsets,
    ) -> None:
        partitions = sorted({(record.topic, record.partition) for record in records})
        rows = await conn.fetch(
            _READ_STORED_OFFSETS,
            self._group_id,
            [topic for topic, _ in partitions],
            [partition for _, partition in partitions],
            not self._synchronous_commit,
        )
        stored = {(row["topic"], row["partition"]): row["next_offset"] for row in rows if row["topic"] is not None}
        moved = {tp: (expected.get(tp), stored.get(tp)) for tp in partitions if stored.get(tp) != expected.get(tp)}
        if moved:
            raise StoredOffsetsMoved(f"stored offsets (expected, found) {moved}")

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
        self,
        conn: asyncpg.Connection,
        fresh: list[tuple[ConsumerRecord[bytes, bytes], Envelope]],
        prepared: object | None = None,
    ) -> list[DeadLetter]:
        if not fresh:
            return []
        try:
            async with conn.transaction():
                if prepared is not None and isinstance(self._handler, PreparingHandler):
                    await self._handler.write(conn, prepared)
                else:
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
            letter = await self._apply_alone(conn, record, event)
            if letter is not None:
                dead.append(letter)
        return dead

    async def _apply_alone(
        self, conn: asyncpg.Connection, record: ConsumerRecord[bytes, bytes], event: Envelope
    ) -> DeadLetter | None:
        """Apply one event in a savepoint; the dead letter it makes if the handler fails."""
        try:
            async with conn.transaction():
                await self._handler(conn, [event])
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - recorded with its reason, not dropped
            return DeadLetter(record, "handler_failed", repr(error), event)
        return None

    async def _release(self, conn: asyncpg.Connection, failed: Sequence[DeadLetter]) -> None:
        """Forget the claims of events whose handler failed: they were not applied, and a replay or a redelivery
        must not take them for done."""
        ids = [letter.event.event_id for letter in failed if letter.event is not None]
        if ids:
            await conn.execute(
                "DELETE FROM processed_events WHERE group_id = $1 AND event_id = ANY($2::uuid[])", self._group_id, ids
            )

    async def reapply(self, conn: asyncpg.Connection, record: ConsumerRecord[bytes, bytes]) -> Reapplied:
        """Decode and apply one record again, as a batch of it would be (same decoding, the same claim in
        processed_events, the same handler), inside the caller's transaction; offsets are left alone."""
        events, dead = self._decode([record])
        if dead:
            return Reapplied("failed", dead[0])
        if not events:
            return Reapplied("not_wanted")
        fresh = await self._claim_new(conn, events)
        if not fresh:
            return Reapplied("already_applied")
        ((claimed, event),) = fresh
        letter = await self._apply_alone(conn, claimed, event)
        if letter is not None:
            await self._release(conn, [letter])
            return Reapplied("failed", letter)
        return Reapplied("applied")

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

    async def _store_offsets(
        self,
        conn: asyncpg.Connection,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        end_offsets: Mapping[tuple[str, int], int],
        generations: Mapping[tuple[str, int], Mapping[str, int]] | None,
    ) -> None:
        last: dict[tuple[str, int], ConsumerRecord[bytes, bytes]] = {}
        for record in records:
            key = (record.topic, record.partition)
            if key not in last or record.offset > last[key].offset:
                last[key] = record
        await conn.executemany(
            _STORE_OFFSETS,
            [
                (
                    self._group_id,
                    topic,
                    partition,
                    record.offset + 1,
                    record_digest(record),
                    max(end_offsets.get((topic, partition), 0), record.offset + 1),
                    None if generations is None else dict(generations.get((topic, partition), {})),
                )
                for (topic, partition), record in last.items()
            ],
        )


# The stored offsets of the batch's partitions (a row of NULLs when none is stored), setting the transaction's
# commit mode on the way ($4: asynchronous), as ASYNCHRONOUS_COMMIT does.
_READ_STORED_OFFSETS = (
    "SELECT o.topic, o.partition, o.next_offset "
    "FROM (SELECT set_config('synchronous_commit', CASE WHEN $4::bool THEN 'off' "
    "                        ELSE current_setting('synchronous_commit') END, true)) AS mode "
    "LEFT JOIN consumer_offsets o ON o.group_id = $1 "
    "AND (o.topic, o.partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))"
)
_STORE_OFFSETS = (
    # Generations left out (NULL) keep what is stored.
    "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, last_record_digest, end_offset, "
    "producer_generations) VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{}')) "
    "ON CONFLICT (group_id, topic, partition) DO UPDATE "
    "SET next_offset = excluded.next_offset, last_record_digest = excluded.last_record_digest, "
    "end_offset = excluded.end_offset, "
    "producer_generations = coalesce($7::jsonb, consumer_offsets.producer_generations), updated_at = now()"
)


def _unwanted(record: ConsumerRecord[bytes, bytes], wanted: frozenset[str]) -> bool:
    """Whether the record is, without validating it, an event of a known type this consumer does not apply:
    its `event_type` header (set by the outbox relays) names such a type and its value agrees. Records without
    the header, of an unknown type, or whose value says otherwise are validated in full (and dead-lettered if
    invalid)."""
    for key, value in record.headers or ():
        if key == "event_type":
            event_type = bytes(value).decode(errors="replace")
            return (
                event_type not in wanted
                and event_type in EVENT_TYPES
                and b'"event_type":"' + bytes(value) + b'"' in (record.value or b"")
            )
    return False


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


_CONTRACT_TOPICS = frozenset(topic.name for topic in TOPICS)


def _misplaced(record: ConsumerRecord[bytes, bytes], event: Envelope) -> str | None:
    """Why a derived event (a stock position, a scheme grant, a claim assessment) must not be applied from this
    record: only its owning service writes it, on its own topic, so a copy on another contract topic came from
    somewhere else. None when it may be applied."""
    if event.event_type not in DERIVED_EVENT_TYPES or record.topic not in _CONTRACT_TOPICS:
        return None
    home = topic_for(event.event_type).name
    if record.topic == home:
        return None
    return f"{event.event_type} is written only to {home} by its owning service, not to {record.topic}"
