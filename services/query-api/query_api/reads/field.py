"""Reads of the field-force projection (field.py) for the field API."""

from collections.abc import Sequence
from datetime import date

import asyncpg

from query_api.figures.field import RepDay, Visit

# Reps by their home distributor (RepRegistered distributor_id), with its region: how field figures are grouped
# and scoped. $1: the scope's distributors (NULL: national); $2..$4: optional rep, distributor, region filters.
_REPS = """
SELECT r.rep_id, r.name, r.distributor_id, d.name AS distributor_name, d.region_id, g.name AS region_name
FROM reps r
LEFT JOIN distributors d ON d.distributor_id = r.distributor_id
LEFT JOIN regions g ON g.region_id = d.region_id
WHERE ($1::text[] IS NULL OR r.distributor_id = ANY($1::text[]))
  AND ($2::text IS NULL OR r.rep_id = $2)
  AND ($3::text IS NULL OR r.distributor_id = $3)
  AND ($4::text IS NULL OR d.region_id = $4)
"""
_PLANS = """
SELECT rep_id, plan_date, outlet_ids FROM field_beat_plans
WHERE rep_id = ANY($1::text[]) AND plan_date BETWEEN $2 AND $3
"""
_VISITS = """
SELECT rep_id, day, outlet_id, checked_in_at, checked_out_at, productive FROM field_visits
WHERE rep_id = ANY($1::text[]) AND day BETWEEN $2 AND $3
"""
_ATTENDED = """
SELECT rep_id, day FROM field_attendance
WHERE rep_id = ANY($1::text[]) AND day BETWEEN $2 AND $3 AND started_at IS NOT NULL
"""
_REP = "SELECT rep_id, name, distributor_id FROM reps WHERE rep_id = $1"
_PLAN = """
SELECT p.ordinality AS sequence, p.outlet_id, o.name, o.lat, o.lon
FROM field_beat_plans b, unnest(b.outlet_ids) WITH ORDINALITY AS p(outlet_id, ordinality)
LEFT JOIN outlets o ON o.outlet_id = p.outlet_id
WHERE b.rep_id = $1 AND b.plan_date = $2
ORDER BY p.ordinality
"""
_DAY_VISITS = """
SELECT v.visit_id, v.outlet_id, o.name, o.lat AS outlet_lat, o.lon AS outlet_lon, v.lat, v.lon, v.accuracy_m,
       v.checked_in_at, v.checked_out_at, v.productive, v.no_order_reason, v.mock_location,
       c.verdict, c.distance_m,
       coalesce((SELECT jsonb_agg(jsonb_build_object('order_id', s.order_id, 'value', s.value::text)
                                  ORDER BY s.order_id)
                 FROM (SELECT so.order_id, sum(k.ordered_value) AS value
                       FROM sales_orders so
                       CROSS JOIN LATERAL sales_order_skus(so.distributor_id, so.order_id) k
                       WHERE so.rep_id = v.rep_id AND so.visit_id = v.visit_id
                       GROUP BY so.order_id) s), '[]'::jsonb) AS orders
FROM field_visits v
LEFT JOIN outlets o ON o.outlet_id = v.outlet_id
LEFT JOIN location_checks c ON c.subject_event_id = v.event_id
WHERE v.rep_id = $1 AND v.day = $2
ORDER BY v.checked_in_at, v.visit_id
"""
_ATTENDANCE = "SELECT started_at, ended_at FROM field_attendance WHERE rep_id = $1 AND day = $2"


async def reps(
    conn: asyncpg.Connection,
    distributors: list[str] | None,
    rep_id: str | None,
    distributor_id: str | None,
    region_id: str | None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_REPS, distributors, rep_id, distributor_id, region_id))


async def field_rows(
    conn: asyncpg.Connection, rep_ids: Sequence[str], date_from: date, date_to: date
) -> tuple[dict[RepDay, list[str]], list[Visit], list[RepDay]]:
    """(plans, visits, attended days) of these reps over the days."""
    arguments = (list(rep_ids), date_from, date_to)
    plans = {(r["rep_id"], r["plan_date"]): list(r["outlet_ids"]) for r in await conn.fetch(_PLANS, *arguments)}
    visits = [Visit(**dict(r)) for r in await conn.fetch(_VISITS, *arguments)]
    attended = [(r["rep_id"], r["day"]) for r in await conn.fetch(_ATTENDED, *arguments)]
    return plans, visits, attended


async def rep(conn: asyncpg.Connection, rep_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_REP, rep_id)


async def rep_day(
    conn: asyncpg.Connection, rep_id: str, day: date
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], asyncpg.Record | None]:
    """(planned outlets in sequence, visits in check-in order, attendance) of one rep's day."""
    return (
        list(await conn.fetch(_PLAN, rep_id, day)),
        list(await conn.fetch(_DAY_VISITS, rep_id, day)),
        await conn.fetchrow(_ATTENDANCE, rep_id, day),
    )
