"""What a projection is: the contract classes it consumes and its two steps. registry.py lists them in order."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.freshness import NewestTimes
from sellthrough_contracts import Envelope
from sellthrough_contracts.lean import LEAN_CONTRACTS, LeanEvent

P = TypeVar("P")

Steps = dict[type[Envelope], Callable[[Any, P], None]]
"""A projection's dispatch by class: contract class -> the function adding one such event to what it prepares."""
LeanSteps = dict[type[Envelope] | type[LeanEvent], Callable[[Any, P], None]]
"""The same, with the lean structs of the contract classes (with_lean)."""


def with_lean(steps: Steps[P]) -> LeanSteps[P]:
    """`steps`, and each lean struct of a contract class in them (sellthrough_contracts.lean: the consumer reads
    trusted trade events as those) dispatched to the same step: a step reads the attributes both have."""
    lean_steps: LeanSteps[P] = dict(steps.items())
    return lean_steps | {lean: steps[contract] for lean, contract in LEAN_CONTRACTS.items() if contract in steps}


class BulkLoader(Protocol):
    """How a projection loads a replayed log into an empty schema fast (the rebuild command): `start`, then `load`
    for each chunk of the log, then `finish`, which leaves the tables as the live path (prepare, write) would have
    left them for the same events."""

    async def start(self, conn: asyncpg.Connection) -> None:
        """Before the first chunk, e.g. drop secondary indexes and create staging tables."""

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        """A chunk of events never seen before, in log order (contract classes or their lean structs), e.g. by
        COPY; every event of the log a projection consumes, whatever its class."""

    async def finish(self, conn: asyncpg.Connection) -> None:
        """After the last chunk: build indexes and rollups set-based, drop what `start` staged."""


@runtime_checkable
class PreparingBulkLoader(Protocol):
    """A BulkLoader whose `load` splits as the live path's prepare and write do: `prepare_load(events)` is pure
    (no database; a rebuild runs it in its decoding thread, while the previous batch is written), and
    `load_prepared(conn, prepare_load(events))` does exactly what `load(conn, events)` does."""

    def prepare_load(self, events: Sequence[Any]) -> Any: ...

    async def load_prepared(self, conn: asyncpg.Connection, prepared: Any) -> None: ...


Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
"""Another connection to the same schema for as long as the context lasts (asyncpg.Pool.acquire)."""


@runtime_checkable
class ParallelFinish(Protocol):
    """A BulkLoader whose `finish` can spread its independent parts over more connections (more backends, so more
    cores), in steps that each commit on their own and are skipped when run again (a crash between them resumes)."""

    async def finish_parallel(self, conn: asyncpg.Connection, connect: Connect) -> None: ...


def stands_alone(loader: BulkLoader) -> bool:
    """Whether the loader's `finish` reads and writes only its own tables, so it may run beside the others'
    finishes (its class says so with `STANDS_ALONE = True`)."""
    return bool(getattr(loader, "STANDS_ALONE", False))


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
    """Its fast path for a rebuild; without one, a rebuild loads it through prepare and write in big batches."""


def collect(steps: Steps[P] | LeanSteps[P], events: Iterable[Envelope], into: P) -> P:
    """`into`, with each event of a class in `steps` added by that class's step; other events are skipped."""
    for event in events:
        if (step := steps.get(type(event))) is not None:
            step(event, into)
    return into
