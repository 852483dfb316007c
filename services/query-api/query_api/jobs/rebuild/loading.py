"""A batch of a rebuild into the projections: each projection's bulk path where it has one, its own prepare and
write otherwise, through the runtime's BatchApplier so that processed ids, dead letters and offsets are stored
exactly as the live consumer stores them (it continues from them after the swap)."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Connect, ParallelFinish, PreparingBulkLoader, Projection, stands_alone
from query_api.projections.freshness import NewestTimes, fed_projections, record_freshness
from query_api.projections.registry import PROJECTIONS
from sellthrough_contracts import Envelope

EventDecoder = Callable[[bytes], Envelope]
"""A record's value -> its event, raising pydantic's ValidationError for one to dead-letter (as the contracts'
decode_event does)."""


@dataclass(frozen=True)
class _Prepared:
    steps: list[tuple[Projection[Any], Any, bool]]
    """Per projection the batch feeds, in registry order: what it prepared (its events, for a bulk one that does not
    prepare) and whether it is bulk-loaded."""
    freshness: list[NewestTimes]


class BulkProjectionHandler:
    """A PreparingHandler over the registry's projections, for a rebuild: bulk-loaded where a projection has a
    BulkLoader (`start` and `finish` are the rebuild's to call), written as live otherwise."""

    def __init__(
        self,
        zone: ZoneInfo,
        projections: Sequence[Projection[Any]] = PROJECTIONS,
        decode_event: EventDecoder | None = None,
    ) -> None:
        self._zone = zone
        self._finished: frozenset[str] = frozenset()
        """Bulk projections whose `finish` is done (a rebuild resumed after one, e.g. `--no-swap` then `--resume`):
        their tables are whole and indexed, so what is read now goes through their live steps."""
        if decode_event is not None:
            # Makes it a DecodingHandler, where the runtime has them: the applier decodes records with it.
            self.decode_event = decode_event
        self._projections = tuple(projections)
        self._routes = {
            cls.type_name(): tuple(i for i, p in enumerate(self._projections) if cls in p.consumes)
            for projection in self._projections
            for cls in projection.consumes
        }
        """Event type -> the positions of the projections consuming it (as registry.route, for any list). By name,
        not class: a handler's own decoder may give a stand-in for the contract class (a lean struct)."""

    @property
    def bulk_projections(self) -> list[Projection[Any]]:
        return [p for p in self._projections if p.bulk is not None]

    def prepare(self, events: Sequence[Envelope]) -> _Prepared:
        steps: list[tuple[Projection[Any], Any, bool]] = []
        shares: list[list[Envelope]] = [[] for _ in self._projections]
        for event in events:
            for i in self._routes.get(event.event_type, ()):
                shares[i].append(event)
        for projection, share in zip(self._projections, shares, strict=True):
            if not share:
                continue
            if projection.name in self._finished:
                steps.append((projection, projection.prepare(share, self._zone), False))
            elif isinstance(projection.bulk, PreparingBulkLoader):
                steps.append((projection, projection.bulk.prepare_load(share), True))
            elif projection.bulk is not None:
                steps.append((projection, share, True))
            else:
                steps.append((projection, projection.prepare(share, self._zone), False))
        fed = [times for p, prepared, bulk in steps if not bulk for times in p.fed(prepared)]
        return _Prepared(steps, [*fed, *fed_projections(events)])

    async def write(self, conn: asyncpg.Connection, prepared: _Prepared) -> None:
        for projection, rows, bulk in prepared.steps:
            if not bulk:
                await projection.write(conn, rows)
            elif isinstance(projection.bulk, PreparingBulkLoader):
                await projection.bulk.load_prepared(conn, rows)
            else:
                assert projection.bulk is not None
                await projection.bulk.load(conn, rows)
        await record_freshness(conn, prepared.freshness)

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None:
        await self.write(conn, self.prepare(events))

    async def start(self, conn: asyncpg.Connection) -> None:
        await conn.execute(_FINISHED_TABLE)
        finished = await _finished(conn)
        self._finished = frozenset(finished)
        for projection in self.bulk_projections:
            if projection.name not in finished:  # a resumed rebuild whose finish got that far
                assert projection.bulk is not None
                await projection.bulk.start(conn)

    async def finish(self, conn: asyncpg.Connection, connect: Connect) -> None:
        """Each bulk projection's `finish`, once (a resumed rebuild skips those recorded as finished): those that
        stand alone on connections of their own, beside the others, which run in registry order on `conn` (a
        later one may read what an earlier one left), spread over more connections where they can."""
        finished = await _finished(conn)
        todo = [p for p in self.bulk_projections if p.name not in finished]

        async def alone(projection: Projection[Any]) -> None:
            async with connect() as own:
                await _finish_one(own, projection, connect)

        beside = [asyncio.create_task(alone(p)) for p in todo if p.bulk is not None and stands_alone(p.bulk)]
        try:
            for projection in todo:
                if projection.bulk is not None and not stands_alone(projection.bulk):
                    await _finish_one(conn, projection, connect)
        finally:
            # Waited for even when an ordered one failed: no task is left running on a pooled connection.
            outcomes = await asyncio.gather(*beside, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


_FINISHED_TABLE = "CREATE TABLE IF NOT EXISTS bulk_load_finished (projection text PRIMARY KEY)"
"""The bulk projections whose `finish` is done, each recorded in the transaction that finished it, so a rebuild
resumed after a crash later in `finish` (or before the swap) does not finish one twice. Dropped at the swap
(schemas.Schemas.swap)."""
_FINISHED = "SELECT projection FROM bulk_load_finished"
_MARK_FINISHED = "INSERT INTO bulk_load_finished (projection) VALUES ($1)"


async def _finished(conn: asyncpg.Connection) -> set[str]:
    return {row["projection"] for row in await conn.fetch(_FINISHED)}


async def _finish_one(conn: asyncpg.Connection, projection: Projection[Any], connect: Connect) -> None:
    loader = projection.bulk
    assert loader is not None
    if isinstance(loader, ParallelFinish):
        # Its steps commit one by one (and are skipped when done): the mark follows the last.
        await loader.finish_parallel(conn, connect)
        await conn.execute(_MARK_FINISHED, projection.name)
        return
    async with conn.transaction():
        await loader.finish(conn)
        await conn.execute(_MARK_FINISHED, projection.name)
