"""How current a projection is: the newest event time it applied, and how far it is behind the end of the
topics that feed it (records published but not yet applied), as the consumer last measured."""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from pydantic import AwareDatetime, BaseModel, Field

from sellthrough_contracts import Envelope
from sellthrough_contracts.topics import SCHEME_RESULTS, SCHEMES, STOCK, TRADE

RECORD_FRESHNESS = """
INSERT INTO projection_freshness (projection, newest_occurred_at, newest_recorded_at) VALUES ($1, $2, $3)
ON CONFLICT (projection) DO UPDATE
SET newest_occurred_at = GREATEST(projection_freshness.newest_occurred_at, excluded.newest_occurred_at),
    newest_recorded_at = GREATEST(projection_freshness.newest_recorded_at, excluded.newest_recorded_at),
    updated_at = now()
"""

_NEWEST = """
SELECT newest_occurred_at, newest_recorded_at FROM projection_freshness WHERE projection = $1
"""

_LAG = """
SELECT sum(GREATEST(end_offset - next_offset, 0))::bigint AS lag, min(updated_at) AS measured_at
FROM consumer_offsets WHERE topic = ANY($1::text[]) AND end_offset IS NOT NULL
"""


class Freshness(BaseModel):
    newest_occurred_at: AwareDatetime | None = Field(description="Source (capture) time of the newest event applied.")
    newest_recorded_at: AwareDatetime | None = Field(description="Server time of the newest event applied.")
    lag_events: int | None = Field(
        default=None,
        description="Records on the feeding topics published but not yet applied, when last measured; "
        "null before the first batch.",
    )
    lag_measured_at: AwareDatetime | None = Field(
        default=None, description="When the lag was measured: the oldest partition's last applied batch."
    )


@dataclass(frozen=True)
class Source:
    event_types: frozenset[str]
    topics: tuple[str, ...]


SOURCES = {
    "stock_positions": Source(frozenset({"StockPositionChanged", "StockVarianceRecorded"}), (STOCK.name,)),
    "stock_alerts": Source(frozenset({"StockAlertRaised"}), (STOCK.name,)),
    "primary_daily": Source(frozenset({"PrimaryInvoiced"}), (TRADE.name,)),
    "schemes": Source(
        frozenset({"SchemeLaunched", "SchemeAmended", "SchemeEnded", "SchemeApplied", "ClaimAssessed"}),
        (SCHEMES.name, SCHEME_RESULTS.name),
    ),
}
"""Projections whose freshness is recorded here, by the events that feed them. (sales_daily and the KPI
projections record their own, in the same statements as their rows.)"""


async def record_freshness(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Advance each projection's newest event times by the events of this batch that feed it."""
    for projection, source in SOURCES.items():
        fed = [e for e in events if e.event_type in source.event_types]
        if fed:
            await conn.execute(
                RECORD_FRESHNESS,
                projection,
                max(e.occurred_at for e in fed),
                max((e.recorded_at for e in fed if e.recorded_at), default=None),
            )


async def projection_freshness(conn: asyncpg.Connection, projection: str) -> Freshness:
    return await read_freshness(conn, projection, SOURCES[projection].topics)


async def read_freshness(conn: asyncpg.Connection, projection: str, topics: Sequence[str]) -> Freshness:
    newest = await conn.fetchrow(_NEWEST, projection)
    lag = await conn.fetchrow(_LAG, list(topics))
    return Freshness(
        newest_occurred_at=newest["newest_occurred_at"] if newest else None,
        newest_recorded_at=newest["newest_recorded_at"] if newest else None,
        lag_events=lag["lag"],
        lag_measured_at=lag["measured_at"],
    )
