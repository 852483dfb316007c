"""Projection of LocationChecked: each order's and visit's location verdict, sync delay and device clock skew, as
order-capture judged them at accept time; and of OutletGeotagged, which closes an outlet's geotag proposal
(README, "Field verification")."""

from collections.abc import Sequence

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.field import LocationChecked, OutletGeotagged

FIELD_CHECK_TYPES = frozenset({"LocationChecked", "OutletGeotagged"})

# A subject has one verdict (its LocationChecked id derives from the subject's): a replay changes nothing.
_INSERT = """
INSERT INTO location_checks (subject_event_id, subject_event_type, outlet_id, distributor_id, rep_id, device, channel,
    verdict, distance_m, lat, lon, accuracy_m, radius_m, sync_delay_s, device_clock_skew_s, checked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (subject_event_id) DO NOTHING
"""
_UPSERT_GEOTAG = """
INSERT INTO outlet_geotags (outlet_id, lat, lon, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (outlet_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, occurred_at = excluded.occurred_at
WHERE outlet_geotags.occurred_at <= excluded.occurred_at
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
            p.lat,
            p.lon,
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
    geotags = [
        (e.payload.outlet_id, e.payload.lat, e.payload.lon, e.occurred_at)
        for e in events
        if isinstance(e, OutletGeotagged)
    ]
    if geotags:
        await conn.executemany(_UPSERT_GEOTAG, geotags)
