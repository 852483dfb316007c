"""A rebuild from start to swap: the rebuild schema created (or resumed), the reference topic read to its end,
then the others, each batch applied with its offsets, the bulk loaders finished, the schema swapped in."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from query_api.jobs.rebuild.loading import BulkProjectionHandler, EventDecoder
from query_api.jobs.rebuild.progress import RebuildProgress
from query_api.jobs.rebuild.schemas import Schemas
from query_api.jobs.rebuild.source import Span, SpanReader, librdkafka_config, spans
from query_api.names import MIGRATIONS, PROJECTION_GROUP, PROJECTION_TOPICS, SCHEMA
from query_api.projections.base import Projection
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES, PROJECTIONS
from query_api.settings import QueryApiSettings
from sellthrough_contracts.topics import REFERENCE
from sellthrough_runtime.applier import BatchApplier, DecodedBatch
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.gc_tuning import long_running_gc

log = logging.getLogger(__name__)

BATCH_RECORDS = 5_000
"""Records per transaction. Through the live projections' writes, measured on 100k order lines (2 shared cores):
2,000 ran at 0.9x the live replay, 5,000 at 1.4x (238 MiB peak), 20,000 at 0.8x (450 MiB: two decoded batches are
in memory at once). Bulk loaders may want more (`--batch-records`)."""


class RebuildExists(RuntimeError):
    """A rebuild schema is there from a rebuild that did not finish: resume it or start over, explicitly."""


class RebuildRunning(RuntimeError):
    """Another rebuild holds the database's rebuild lock."""


_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext($1))"


@dataclass(frozen=True)
class Options:
    resume: bool = False
    restart: bool = False
    swap: bool = True
    batch_records: int = BATCH_RECORDS
    decode_event: EventDecoder | None = None
    """How records are decoded; None: as the live consumer decodes them (its handler's own decoder, if it has one,
    e.g. lean structs for trusted topics; else the contracts' decode_event)."""
    terminal: bool | None = None
    """Show a progress bar (None: when stderr is a terminal)."""
    projections: Sequence[Projection[Any]] = PROJECTIONS
    """What to rebuild: the registry's projections, in its order."""


@dataclass(frozen=True)
class Status:
    rebuild_schema: bool
    applied: int
    """Records below the stored offsets of the rebuild schema."""
    remaining: int
    """Records from there to the high watermarks now."""
    previous_schema: bool

    def describe(self, schemas: Schemas) -> str:
        lines = []
        if self.rebuild_schema:
            total = self.applied + self.remaining
            percent = 100 * self.applied / total if total else 100.0
            lines.append(
                f"{schemas.rebuild}: {self.applied:,} of {total:,} records applied ({percent:.1f}%), "
                f"{self.remaining:,} to go; continue with --resume, or start over with --restart"
            )
        else:
            lines.append(f"no rebuild in progress; a rebuild would read {self.remaining:,} records")
        if self.previous_schema:
            lines.append(f"{schemas.previous} holds the schema the last rebuild replaced (--drop-previous drops it)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Outcome:
    records: int
    dead_letters: int
    seconds: float
    swapped: bool

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _topics() -> list[list[str]]:
    """Reading order: the reference topic first (the projections denormalise masters into their rows), then the
    others together (the live path copes with any order between them)."""
    others = [topic for topic in PROJECTION_TOPICS if topic != REFERENCE.name]
    return [[REFERENCE.name], others]


async def status(settings: QueryApiSettings) -> Status:
    schemas = Schemas(SCHEMA)
    conn = await asyncpg.connect(settings.database_url)
    try:
        in_progress = await schemas.exists(conn, schemas.rebuild)
        stored = await schemas.stored_offsets(conn, PROJECTION_GROUP)
        previous = await schemas.exists(conn, schemas.previous)
    finally:
        await conn.close()
    config = librdkafka_config(settings.kafka_bootstrap_servers, settings)
    found = await asyncio.to_thread(spans, config, [t for phase in _topics() for t in phase], {})
    total = sum(s.records for s in found)
    remaining = sum(max(s.end - stored.get((s.topic, s.partition), s.start), 0) for s in found)
    return Status(in_progress, total - remaining, remaining, previous)


async def drop_previous(settings: QueryApiSettings) -> bool:
    schemas = Schemas(SCHEMA)
    conn = await asyncpg.connect(settings.database_url)
    try:
        existed = await schemas.exists(conn, schemas.previous)
        await schemas.drop(conn, schemas.previous)
        return existed
    finally:
        await conn.close()


async def rebuild(settings: QueryApiSettings, options: Options) -> Outcome:
    """One rebuild at a time per database: a second would write the same schema (a session lock, released when
    this process ends, however it ends)."""
    held = await asyncpg.connect(settings.database_url)
    try:
        if not await held.fetchval(_TRY_LOCK, f"sellthrough-rebuild:{SCHEMA}"):
            raise RebuildRunning("another sellthrough-rebuild is running against this database")
        return await _rebuild(settings, options)
    finally:
        await held.close()


async def _rebuild(settings: QueryApiSettings, options: Options) -> Outcome:
    schemas = Schemas(SCHEMA)
    conn = await asyncpg.connect(settings.database_url)
    try:
        if await schemas.exists(conn, schemas.rebuild):
            if options.restart:
                log.warning("dropping the unfinished rebuild", extra={"schema": schemas.rebuild})
                await schemas.drop(conn, schemas.rebuild)
            elif not options.resume:
                raise RebuildExists(
                    f"schema {schemas.rebuild} exists from a rebuild that did not finish: "
                    "rerun with --resume to continue it, or --restart to start over (see --dry-run for how far it got)"
                )
        await migrate(settings.database_url, schemas.rebuild, MIGRATIONS)
        stored = await schemas.stored_offsets(conn, PROJECTION_GROUP)
    finally:
        await conn.close()
    if stored:
        log.info("resuming the rebuild from its stored offsets", extra={"schema": schemas.rebuild})

    config = librdkafka_config(settings.kafka_bootstrap_servers, settings)
    phases = _topics()
    found = await asyncio.to_thread(spans, config, [t for phase in phases for t in phase], stored)
    total = sum(s.records for s in found)
    log.info(
        "rebuild planned",
        extra={"records": total, "spans": [f"{s.topic}[{s.partition}] {s.start}..{s.end}" for s in found if s.records]},
    )
    # Bulk loads and index builds run far longer than a live batch's statements.
    pool = await create_pool(
        settings.database_url,
        schemas.rebuild,
        min_size=1,
        # Two for reading (a batch applied while the next is decoded); four for `finish`, whose independent parts
        # run on backends of their own (both cores busy).
        max_size=4,
        command_timeout=3600,
        # A commit lost in a crash takes its offsets with it: the resumed rebuild reads those records again.
        server_settings={"synchronous_commit": "off", "maintenance_work_mem": "512MB", "work_mem": "256MB"},
    )
    decode_event = options.decode_event or getattr(projection_handler(settings), "decode_event", None)
    handler = BulkProjectionHandler(settings.zone, options.projections, decode_event)
    applier = BatchApplier(pool=pool, group_id=PROJECTION_GROUP, handler=handler, wanted_types=PROJECTION_TYPES)
    started = time.monotonic()
    try:
        with long_running_gc(), RebuildProgress(total, terminal=options.terminal) as progress:
            async with pool.acquire() as c, c.transaction():
                await handler.start(c)
            for phase in phases:
                phase_started = time.monotonic()
                await _read(config, [s for s in found if s.topic in phase], applier, options, progress)
                log.info("rebuild read", extra={"topics": phase, "seconds": round(time.monotonic() - phase_started, 2)})
            finish_started = time.monotonic()
            async with pool.acquire() as c:
                await handler.finish(c, pool.acquire)
            log.info("bulk loads finished", extra={"seconds": round(time.monotonic() - finish_started, 2)})
        dead = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE group_id = $1", PROJECTION_GROUP)
    finally:
        await pool.close()
    if options.swap:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await schemas.swap(conn)
        finally:
            await conn.close()
    log.info(
        "rebuild complete",
        extra={"records": progress.done, "records_per_s": round(progress.rate), "swapped": options.swap},
    )
    return Outcome(progress.done, int(dead), time.monotonic() - started, options.swap)


async def _read(
    config: dict[str, object],
    to_read: Sequence[Span],
    applier: BatchApplier,
    options: Options,
    progress: RebuildProgress,
) -> None:
    """Reads `to_read` to their ends. Three stages overlap: librdkafka fetches the next batch in a thread,
    Python decodes (and prepares) it in another, while Postgres applies the one before."""
    ends = {(s.topic, s.partition): s.end for s in to_read}
    reader = SpanReader(config, to_read)
    fetching: asyncio.Task[list[ConsumerRecord[bytes, bytes]] | None] | None = None
    applying: asyncio.Task[int] | None = None

    async def apply(batch: DecodedBatch) -> int:
        await applier.apply_decoded(batch, ends)
        return len(batch.records)

    try:
        fetching = asyncio.create_task(asyncio.to_thread(reader.next_batch, options.batch_records))
        while (records := await fetching) is not None:
            fetching = asyncio.create_task(asyncio.to_thread(reader.next_batch, options.batch_records))
            # Decoded (and prepared) in a thread, not in the event loop: there, one decode blocked the loop for its
            # whole length, so the batch being applied sent one statement per decode and PostgreSQL sat idle
            # between them. From a thread, the loop gets the GIL back at each switch interval and keeps the
            # apply's statements going while the next batch is decoded.
            decoded = await asyncio.to_thread(applier.decode, records) if records else None
            if applying is not None:
                progress.advance(await applying)
                applying = None
            if decoded is not None:
                applying = asyncio.create_task(apply(decoded))
        fetching = None
        if applying is not None:
            progress.advance(await applying)
            applying = None
    finally:
        if applying is not None:
            applying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await applying
        if fetching is not None:
            # Not cancelled: its thread must be done with the consumer before the consumer is closed.
            with contextlib.suppress(Exception):
                await asyncio.shield(fetching)
        reader.close()
