"""The drill-down narrowed to outlets of some channels or classes (GET /v1/sales with `channel`, `outlet_class`).

The rollups reads/sales.py prefers are per distributor or outlet with no channel in them, so a narrowed drill reads
the order-line fact table (sales_lines) joined to the outlet dimension, which carries each outlet's channel and
class from OutletRegistered: no column or rollup is added for it. The statement is reads/sales.py's line drill with
two more conditions, rows grouped and totalled the same way, so the rows of every channel add up to the unfiltered
rows (less the sales of outlets reference data has not described, which have no channel).
"""

import asyncpg

from query_api.reads.sales import DrillQuery, DrillResult, drill, line_drill_sql
from query_api.reads.segment import Segment

# $9 channels, $10 outlet classes (null: any); an outlet reference data has not described matches neither.
_SEGMENT_DRILL_SQL = line_drill_sql(
    """
      AND ($9::text[] IS NULL OR o.channel = ANY($9))
      AND ($10::text[] IS NULL OR o.outlet_class = ANY($10))"""
)


async def segment_drill(conn: asyncpg.Connection, query: DrillQuery, segment: Segment) -> DrillResult:
    return await drill(conn, query, statement=_SEGMENT_DRILL_SQL, more=(segment.channels, segment.outlet_classes))
