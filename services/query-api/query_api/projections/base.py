"""What a projection is: the contract classes it consumes and its two steps. registry.py lists them in order."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
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


def collect(steps: Steps[P] | LeanSteps[P], events: Iterable[Envelope], into: P) -> P:
    """`into`, with each event of a class in `steps` added by that class's step; other events are skipped."""
    for event in events:
        if (step := steps.get(type(event))) is not None:
            step(event, into)
    return into
