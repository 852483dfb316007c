"""How current a projection is: the newest event time it applied, and how far it is behind the end of the
topics that feed it (records published but not yet applied), as the consumer last measured."""

from collections.abc import Sequence

import asyncpg
from pydantic import AwareDatetime, BaseModel, Field

from query_api.projections.freshness import SOURCES

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
