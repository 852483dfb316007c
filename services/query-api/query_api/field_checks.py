"""Projection of LocationChecked: each order's and visit's location verdict, sync delay and device clock skew, as
order-capture judged them at accept time (README, "Field verification")."""

from collections.abc import Sequence

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.field import LocationChecked

FIELD_CHECK_TYPES = frozenset({"LocationChecked"})

# A subject has one verdict (its LocationChecked id derives from the subject's): a replay changes nothing.
_INSERT = """
INSERT INTO location_checks (subject_event_id, subject_event_type, outlet_id, distributor_id, rep_id, device, channel,
    verdict, distance_m, accuracy_m, radius_m, sync_delay_s, device_clock_skew_s, checked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (subject_event_id) DO NOTHING
"""


async def apply_location_checks(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    rows = [
        (
            p.subject_event_id,
            p.subject_event_type,
            p.outlet_id,
            p.distributor_id,
            p.rep_id,
            p.device,
            p.channel,
            p.verdict,
            p.distance_m,
            p.accuracy_m,
            p.radius_m,
            p.sync_delay_s,
            p.device_clock_skew_s,
            e.recorded_at or e.occurred_at,
        )
        for e in events
        if isinstance(e, LocationChecked) and (p := e.payload) is not None
    ]
    if rows:
        await conn.executemany(_INSERT, rows)
