"""How current a projection is: the newest event time it applied, and how far it is behind the end of the
topics that feed it (records published but not yet applied), as the consumer last measured."""

from collections.abc import Sequence

import asyncpg
from pydantic import AwareDatetime, BaseModel, Field

from query_api.projections.freshness import SOURCES

# One statement, one round trip (every read endpoint reports freshness): the lag over the topics (always one row,
# an aggregate) with the projection's newest times beside it, when it has any.
_FRESHNESS = """
SELECT f.newest_occurred_at, f.newest_recorded_at, l.lag, l.measured_at
FROM (
    SELECT sum(GREATEST(end_offset - next_offset, 0))::bigint AS lag, min(updated_at) AS measured_at
    FROM consumer_offsets WHERE topic = ANY($2::text[]) AND end_offset IS NOT NULL
) AS l
LEFT JOIN projection_freshness f ON f.projection = $1
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
    row = await conn.fetchrow(_FRESHNESS, projection, list(topics))
    return Freshness(
        newest_occurred_at=row["newest_occurred_at"],
        newest_recorded_at=row["newest_recorded_at"],
        lag_events=row["lag"],
        lag_measured_at=row["measured_at"],
    )
