"""What a projection is: the contract classes it consumes and its two steps. registry.py lists them in order."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.freshness import NewestTimes
from sellthrough_contracts import Envelope

P = TypeVar("P")

Steps = dict[type[Envelope], Callable[[Any, P], None]]
"""A projection's dispatch by class: contract class -> the function adding one such event to what it prepares."""


class BulkLoader(Protocol):
    """A projection's bulk path for a rebuild (query_api.jobs.rebuild) into an empty schema: `start` once before
    the first batch (and again when a killed rebuild resumes), `load` per batch inside the batch's transaction,
    `finish` once after the last (indexes, rollups)."""

    async def start(self, conn: asyncpg.Connection) -> None: ...

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None: ...

    async def finish(self, conn: asyncpg.Connection) -> None: ...


def _fed_nothing(_prepared: Any) -> Sequence[NewestTimes]:
    return ()


@dataclass(frozen=True)
class Projection(Generic[P]):
    name: str
    consumes: tuple[type[Envelope], ...]
    """The contract classes it applies; it is handed only events of these, in batch order."""
    prepare: Callable[[Sequence[Envelope], ZoneInfo], P]
    """Pure (no database, no state a write changes): what to write. Runs before the transaction, while the previous
    batch's statements run (sellthrough_runtime.applier.PreparingHandler)."""
    write: Callable[[asyncpg.Connection, P], Awaitable[None]]
    """Writes what `prepare` gave, inside the consumer's transaction."""
    fed: Callable[[P], Sequence[NewestTimes]] = _fed_nothing
    """The newest event times of the figures it fed, for record_freshness (freshness.SOURCES covers the others)."""
    bulk: BulkLoader | None = None
    """Its bulk path for a rebuild, if it has one; else a rebuild uses `prepare` and `write` per batch."""


def collect(steps: Steps[P], events: Iterable[Envelope], into: P) -> P:
    """`into`, with each event of a class in `steps` added by that class's step; other events are skipped."""
    for event in events:
        if (step := steps.get(type(event))) is not None:
            step(event, into)
    return into
