"""The newest event times each projection has applied, recorded with every batch (read back by reads/freshness.py)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import ClaimAssessed, SchemeAmended, SchemeApplied, SchemeEnded, SchemeLaunched
from sellthrough_contracts.stock import StockAlertRaised, StockPositionChanged, StockVarianceRecorded
from sellthrough_contracts.topics import SCHEME_RESULTS, SCHEMES, STOCK, TRADE
from sellthrough_contracts.trade import PrimaryInvoiced

# In projection order, so that members applying batches concurrently lock the rows in the same order.
_RECORD_FRESHNESS = """
INSERT INTO projection_freshness (projection, newest_occurred_at, newest_recorded_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) ORDER BY 1
ON CONFLICT (projection) DO UPDATE
SET newest_occurred_at = GREATEST(projection_freshness.newest_occurred_at, excluded.newest_occurred_at),
    newest_recorded_at = GREATEST(projection_freshness.newest_recorded_at, excluded.newest_recorded_at),
    updated_at = now()
"""


@dataclass(frozen=True)
class Source:
    consumes: frozenset[type[Envelope]]
    topics: tuple[str, ...]


SOURCES = {
    "stock_positions": Source(frozenset({StockPositionChanged, StockVarianceRecorded}), (STOCK.name,)),
    "stock_alerts": Source(frozenset({StockAlertRaised}), (STOCK.name,)),
    "primary_daily": Source(frozenset({PrimaryInvoiced}), (TRADE.name,)),
    "schemes": Source(
        frozenset({SchemeLaunched, SchemeAmended, SchemeEnded, SchemeApplied, ClaimAssessed}),
        (SCHEMES.name, SCHEME_RESULTS.name),
    ),
}
"""Projections whose freshness is derived here from the events that feed them. (sales_daily and the KPI
projections derive theirs when their rows are prepared.)"""


NewestTimes = tuple[str, datetime, datetime | None]
"""A projection fed by a batch, and the newest occurred_at and recorded_at of the events that fed it."""


def newest_times(projection: str, events: Sequence[Envelope]) -> NewestTimes | None:
    if not events:
        return None
    return (
        projection,
        max(e.occurred_at for e in events),
        max((e.recorded_at for e in events if e.recorded_at), default=None),
    )


def fed_projections(events: Sequence[Envelope]) -> list[NewestTimes]:
    """The newest times of each projection of SOURCES that this batch feeds."""
    fed = (newest_times(p, [e for e in events if type(e) in s.consumes]) for p, s in SOURCES.items())
    return [times for times in fed if times is not None]


async def record_freshness(conn: asyncpg.Connection, fed: Sequence[NewestTimes]) -> None:
    """Advance each fed projection's newest event times. One statement, meant to be the batch's last: every
    member of the group updates these few rows, and each waits for the transaction that updated a row before it
    to commit, so the rows should stay locked no longer than the commit takes."""
    if fed:
        projections, occurred, recorded = zip(*fed, strict=True)
        await conn.execute(_RECORD_FRESHNESS, list(projections), list(occurred), list(recorded))
