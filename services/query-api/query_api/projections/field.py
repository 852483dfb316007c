"""The field-force projection: visits with check-in and check-out, beat plans, attendance (issue 16).

Idempotent and order-free, so a batch replayed or events arriving out of order give the same rows: a visit is
keyed by (rep, visit id) and its newest record wins; a beat plan by (rep, day), the latest occurred_at winning;
a day's attendance keeps the earliest start and the latest end."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from sellthrough_contracts import Envelope
from sellthrough_contracts.field import BeatPlanned, DayEnded, DayStarted
from sellthrough_contracts.trade import VisitRecorded

_UPSERT_VISIT = """
INSERT INTO field_visits (rep_id, visit_id, event_id, outlet_id, distributor_id, day, checked_in_at, checked_out_at,
                          occurred_at, productive, no_order_reason, lat, lon, accuracy_m, mock_location)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (rep_id, visit_id) DO UPDATE SET
    event_id = excluded.event_id, outlet_id = excluded.outlet_id, distributor_id = excluded.distributor_id,
    day = excluded.day, checked_in_at = excluded.checked_in_at, checked_out_at = excluded.checked_out_at,
    occurred_at = excluded.occurred_at, productive = excluded.productive, no_order_reason = excluded.no_order_reason,
    lat = excluded.lat, lon = excluded.lon, accuracy_m = excluded.accuracy_m, mock_location = excluded.mock_location
WHERE (excluded.occurred_at, excluded.event_id) > (field_visits.occurred_at, field_visits.event_id)
"""
_UPSERT_PLAN = """
INSERT INTO field_beat_plans (rep_id, plan_date, outlet_ids, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (rep_id, plan_date) DO UPDATE SET outlet_ids = excluded.outlet_ids, occurred_at = excluded.occurred_at
WHERE excluded.occurred_at > field_beat_plans.occurred_at
"""
_DAY_STARTED = """
INSERT INTO field_attendance (rep_id, day, started_at, start_lat, start_lon) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (rep_id, day) DO UPDATE SET
    started_at = excluded.started_at, start_lat = excluded.start_lat, start_lon = excluded.start_lon
WHERE field_attendance.started_at IS NULL OR excluded.started_at < field_attendance.started_at
"""
_DAY_ENDED = """
INSERT INTO field_attendance (rep_id, day, ended_at, end_lat, end_lon) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (rep_id, day) DO UPDATE SET
    ended_at = excluded.ended_at, end_lat = excluded.end_lat, end_lon = excluded.end_lon
WHERE field_attendance.ended_at IS NULL OR excluded.ended_at > field_attendance.ended_at
"""


@dataclass
class FieldRows:
    zone: ZoneInfo
    visits: list[tuple[Any, ...]] = field(default_factory=list)
    plans: list[tuple[Any, ...]] = field(default_factory=list)
    starts: list[tuple[Any, ...]] = field(default_factory=list)
    ends: list[tuple[Any, ...]] = field(default_factory=list)


def _visit(event: VisitRecorded, rows: FieldRows) -> None:
    v = event.payload
    # A version 1 visit has no check-in: the time it was recorded on the device stands in.
    checked_in = v.checked_in_at or event.occurred_at
    gps = v.gps
    rows.visits.append(
        (
            v.rep_id,
            v.visit_id,
            event.event_id,
            v.outlet_id,
            v.distributor_id,
            checked_in.astimezone(rows.zone).date(),
            checked_in,
            v.checked_out_at,
            event.occurred_at,
            v.productive,
            v.no_order_reason,
            gps.lat if gps else None,
            gps.lon if gps else None,
            gps.accuracy_m if gps else None,
            v.mock_location,
        )
    )


def _plan(event: BeatPlanned, rows: FieldRows) -> None:
    p = event.payload
    rows.plans.append((p.rep_id, p.plan_date, list(p.outlet_ids), event.occurred_at))


def _attendance(event: DayStarted | DayEnded, zone: ZoneInfo) -> tuple[Any, ...]:
    a = event.payload
    return (
        a.rep_id,
        event.occurred_at.astimezone(zone).date(),
        event.occurred_at,
        a.gps.lat if a.gps else None,
        a.gps.lon if a.gps else None,
    )


def _day_started(event: DayStarted, rows: FieldRows) -> None:
    rows.starts.append(_attendance(event, rows.zone))


def _day_ended(event: DayEnded, rows: FieldRows) -> None:
    rows.ends.append(_attendance(event, rows.zone))


_STEPS: Steps[FieldRows] = {VisitRecorded: _visit, BeatPlanned: _plan, DayStarted: _day_started, DayEnded: _day_ended}


def prepare_field_rows(events: Sequence[Envelope], zone: ZoneInfo) -> FieldRows:
    return collect(_STEPS, events, FieldRows(zone))


async def write_field_rows(conn: asyncpg.Connection, rows: FieldRows) -> None:
    for statement, values in (
        (_UPSERT_VISIT, rows.visits),
        (_UPSERT_PLAN, rows.plans),
        (_DAY_STARTED, rows.starts),
        (_DAY_ENDED, rows.ends),
    ):
        if values:
            await conn.executemany(statement, values)


FIELD = Projection("field", tuple(_STEPS), prepare_field_rows, write_field_rows)
