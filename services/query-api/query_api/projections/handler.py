"""The consumer's handler: one batch through every projection of the registry."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection
from query_api.projections.freshness import NewestTimes, fed_projections, record_freshness
from query_api.projections.registry import PROJECTIONS, route
from sellthrough_contracts import Envelope, decode_event
from sellthrough_contracts.lean import decode_lean
from sellthrough_runtime.settings import ServiceSettings


@dataclass(frozen=True)
class _Prepared:
    steps: list[tuple[Projection[Any], Any]]
    """Each projection the batch has events for, in registry order, with what it prepared."""
    freshness: list[NewestTimes]
    """Every projection the batch feeds, with its newest event times."""


class ProjectionHandler:
    """Applies a batch to every projection of the registry, in its order, each given only the events it consumes.
    A PreparingHandler (sellthrough_runtime.applier): every projection's rows, the bulk of the Python work, are
    prepared before the transaction, while the previous batch's statements run."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def decode_event(self, raw: bytes, /) -> Envelope:
        """A DecodingHandler (sellthrough_runtime.applier): the hot trade events as lean msgspec structs (~2 us
        against ~11 us), every other record, and any the lean reading refuses, with the full contract, which upcasts
        an older version or raises the ValidationError its dead letter records."""
        lean = decode_lean(raw)
        # A lean struct stands in for its contract class: it has every attribute the applier and the projection
        # steps read (with_lean, registry._ROUTES dispatch it as its contract class).
        return decode_event(raw) if lean is None else cast(Envelope, lean)

    def prepare(self, events: Sequence[Envelope]) -> _Prepared:
        steps = [
            (projection, projection.prepare(share, self.zone))
            for projection, share in zip(PROJECTIONS, route(events), strict=True)
            if share
        ]
        fed = [times for projection, prepared in steps for times in projection.fed(prepared)]
        return _Prepared(steps, [*fed, *fed_projections(events)])

    async def write(self, conn: asyncpg.Connection, prepared: _Prepared) -> None:
        for projection, rows in prepared.steps:
            await projection.write(conn, rows)
        await record_freshness(conn, prepared.freshness)

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None:
        await self.write(conn, self.prepare(events))


def projection_handler(settings: ServiceSettings) -> ProjectionHandler:
    return ProjectionHandler(settings.zone)
