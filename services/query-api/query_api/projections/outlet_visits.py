"""The reps' visits to outlets, kept for each outlet's activity (reads/outlets.py)."""

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import VisitRecorded

_INSERT_VISITS = """
INSERT INTO visits (event_id, visit_id, distributor_id, outlet_id, rep_id, day, occurred_at, recorded_at, source,
                    productive, no_order_reason, lat, lon, accuracy_m)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::timestamptz[],
                     $8::timestamptz[], $9::text[], $10::bool[], $11::text[], $12::float8[], $13::float8[],
                     $14::float8[])
ON CONFLICT DO NOTHING
"""


def prepare_visit_rows(events: Sequence[Envelope], zone: ZoneInfo) -> list[tuple[Any, ...]]:
    return [
        (
            v.event_id,
            v.payload.visit_id,
            v.payload.distributor_id,
            v.payload.outlet_id,
            v.payload.rep_id,
            v.occurred_at.astimezone(zone).date(),
            v.occurred_at,
            v.recorded_at,
            v.source,
            v.payload.productive,
            v.payload.no_order_reason,
            v.payload.gps.lat if v.payload.gps else None,
            v.payload.gps.lon if v.payload.gps else None,
            v.payload.gps.accuracy_m if v.payload.gps else None,
        )
        for v in events
        if type(v) is VisitRecorded
    ]


async def write_visit_rows(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.execute(_INSERT_VISITS, *(list(column) for column in zip(*rows, strict=True)))


VISITS = Projection("outlet_visits", (VisitRecorded,), prepare_visit_rows, write_visit_rows)
