"""Projection of LocationChecked: each order's and visit's location verdict, sync delay and device clock skew, as
order-capture judged them at accept time; and of OutletGeotagged, which closes an outlet's geotag proposal
(README, "Field verification")."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from sellthrough_contracts import Envelope
from sellthrough_contracts.field import LocationChecked, OutletGeotagged

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


@dataclass
class CheckRows:
    checks: list[tuple[Any, ...]] = field(default_factory=list)
    geotags: list[tuple[Any, ...]] = field(default_factory=list)


def _checked(e: LocationChecked, rows: CheckRows) -> None:
    p = e.payload
    rows.checks.append(
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
    )


def _geotagged(e: OutletGeotagged, rows: CheckRows) -> None:
    rows.geotags.append((e.payload.outlet_id, e.payload.lat, e.payload.lon, e.occurred_at))


_STEPS: Steps[CheckRows] = {LocationChecked: _checked, OutletGeotagged: _geotagged}


def prepare_check_rows(events: Sequence[Envelope], _zone: ZoneInfo) -> CheckRows:
    return collect(_STEPS, events, CheckRows())


async def write_check_rows(conn: asyncpg.Connection, rows: CheckRows) -> None:
    if rows.checks:
        await conn.executemany(_INSERT, rows.checks)
    if rows.geotags:
        await conn.executemany(_UPSERT_GEOTAG, rows.geotags)


FIELD_CHECKS = Projection("field_checks", tuple(_STEPS), prepare_check_rows, write_check_rows)
