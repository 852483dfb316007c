"""HTTP API of the field force: GET /v1/field/performance (beat compliance, productive calls, attendance... per
region, distributor or rep) and GET /v1/field/reps/{rep_id}/days/{day} (one rep's day, planned against visited).

Scoped like every read (api/caller.py): reps are placed by their home distributor, so a regional manager or a
distributor reads the reps based in its territory; a rep reads only itself."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, RepFilter, forbidden, readers
from query_api.api.exports import Format, export_response
from query_api.api.money import Priced
from query_api.api.params import PeriodDep
from query_api.figures.field import Totals, clock, group_totals, ratio
from query_api.reads.field import field_rows, rep, rep_day, reps
from sellthrough_contracts.common import ID_PATTERN
from sellthrough_contracts.field import LocationVerdict
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep, SettingsDep
from sellthrough_runtime.problems import ProblemError

router = APIRouter(prefix="/v1/field", dependencies=[readers(*READERS, Role.REP)], tags=["field"])

GroupBy = Annotated[
    Literal["region", "distributor", "rep"], Query(description="One row per region, distributor or rep.")
]
NodeFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]


class FieldRow(BaseModel):
    id: str | None = Field(description="The region, distributor or rep; null: reps whose distributor has no region.")
    name: str | None
    reps: int = Field(description="Reps with a plan, a visit or attendance in the range.")
    planned_outlets: int = Field(description="Outlet calls planned, summed over each rep's days.")
    planned_visited: int = Field(description="Planned outlets that were visited on their day.")
    beat_compliance: Decimal | None = Field(description="planned_visited / planned_outlets; null without a plan.")
    visits: int
    productive_visits: int = Field(description="Visits with an order.")
    productive_share: Decimal | None = Field(description="productive_visits / visits; null without visits.")
    unplanned_visits: int = Field(description="Visits to an outlet not on that day's plan.")
    days_with_calls: int
    avg_first_call: str | None = Field(description="Average time of the first check-in of a day with calls, HH:MM.")
    avg_last_call: str | None = Field(description="Average time of the last check-in of a day with calls, HH:MM.")
    time_in_market_minutes: int = Field(description="First check-in to last check-out, summed over days.")
    time_at_outlets_minutes: int = Field(description="Check-in to check-out of every checked-out visit, summed.")
    attended_days: int = Field(description="Days the rep started (DayStarted).")
    absent_days: int = Field(description="Days with a non-empty plan the rep never started.")


class FieldPerformance(BaseModel):
    group_by: str
    date_from: date
    date_to: date
    rows: list[FieldRow]


class PlannedCall(BaseModel):
    sequence: int
    outlet_id: str
    name: str | None
    lat: float | None
    lon: float | None
    visited: bool


class VisitOrder(BaseModel):
    order_id: str
    value: Decimal


class DayVisit(BaseModel):
    sequence: int = Field(description="Order of check-in within the day, from 1.")
    visit_id: str
    outlet_id: str
    name: str | None
    outlet_lat: float | None = Field(description="Where the outlet is (master data).")
    outlet_lon: float | None
    lat: float | None = Field(description="Where the device was at check-in.")
    lon: float | None
    accuracy_m: float | None
    checked_in_at: datetime
    checked_out_at: datetime | None
    minutes_spent: int | None
    productive: bool
    no_order_reason: str | None
    mock_location: bool
    verdict: LocationVerdict | None = Field(
        description="The location verdict order-capture gave the visit; empty until its LocationChecked arrives."
    )
    distance_m: float | None = Field(description="Great-circle distance from the outlet at check-in, in metres.")
    planned: bool
    orders: list[VisitOrder]


class RepDay(Priced):
    rep_id: str
    name: str
    day: date
    started_at: datetime | None
    ended_at: datetime | None
    planned: list[PlannedCall] = Field(description="The plan in force, in its sequence.")
    visits: list[DayVisit] = Field(description="In check-in order.")


@router.get("/performance", response_model=FieldPerformance, operation_id="get_field_performance")
async def get_field_performance(
    scope: CallerScope,
    rep_id: RepFilter,
    conn: ConnectionDep,
    settings: SettingsDep,
    period: PeriodDep,
    group_by: GroupBy = "rep",
    region: NodeFilter = None,
    distributor: NodeFilter = None,
    fmt: Format = "json",
) -> FieldPerformance | Response:
    """Beat compliance, productive calls, unplanned visits, first and last call, time in market and attendance
    per region, distributor or rep over the days."""
    date_from, date_to = period.date_from, period.date_to
    # A region row is a partial figure for a caller below region level (a distributor): refused, as drills are.
    scope.require_level("outlet" if group_by == "rep" else group_by, None)
    if scope.rep is None:
        if region is not None:
            scope.require_node("region", region)
        if distributor is not None:
            scope.require_distributor(distributor)
    rows = await reps(conn, scope.distributor_list, rep_id, distributor, region)
    plans, visits, attended = await field_rows(conn, [r["rep_id"] for r in rows], date_from, date_to)
    key = {"region": "region_id", "distributor": "distributor_id", "rep": "rep_id"}[group_by]
    name = {"region": "region_name", "distributor": "distributor_name", "rep": "name"}[group_by]
    group = {r["rep_id"]: r[key] for r in rows}
    names = {r[key]: r[name] for r in rows}
    totals = group_totals(plans, visits, attended, group.get, settings.zone)
    table = [_row(g, names.get(g), t) for g, t in sorted(totals.items(), key=lambda item: item[0] or "")]
    if fmt != "json":
        return export_response(FieldRow, table, f"field-performance-by-{group_by}", fmt)
    return FieldPerformance(group_by=group_by, date_from=date_from, date_to=date_to, rows=table)


def _row(group: str | None, name: str | None, t: Totals) -> FieldRow:
    return FieldRow(
        id=group,
        name=name,
        reps=len(t.reps),
        planned_outlets=t.planned,
        planned_visited=t.planned_visited,
        beat_compliance=ratio(t.planned_visited, t.planned),
        visits=t.visits,
        productive_visits=t.productive,
        productive_share=ratio(t.productive, t.visits),
        unplanned_visits=t.unplanned,
        days_with_calls=t.days_with_calls,
        avg_first_call=clock(t.first_call_minutes, t.days_with_calls),
        avg_last_call=clock(t.last_call_minutes, t.days_with_calls),
        time_in_market_minutes=t.market_minutes,
        time_at_outlets_minutes=t.outlet_minutes,
        attended_days=t.attended_days,
        absent_days=t.absent_days,
    )


RepId = Annotated[str, Path(pattern=ID_PATTERN, description="The rep.")]


@router.get(
    "/reps/{rep_id}/days/{day}",
    response_model=RepDay,
    operation_id="get_field_rep_day",
    responses={404: {"description": "No rep with this id is known"}},
)
async def get_field_rep_day(scope: CallerScope, conn: ConnectionDep, rep_id: RepId, day: date) -> RepDay:
    """One rep's day: the planned outlets in sequence against the visits in check-in order, with where each
    outlet is and where the device was, each visit's times and its orders."""
    if scope.rep is not None and rep_id != scope.rep:
        raise forbidden(f"This token reads as rep '{scope.rep}', not '{rep_id}'.")
    found = await rep(conn, rep_id)
    # Outside the scope, whether a rep exists is not the caller's to know: 403 before the 404.
    if scope.rep is None and not scope.holds_distributor(found["distributor_id"] if found else None):
        raise forbidden(f"The rep '{rep_id}' is outside your scope.")
    if found is None:
        raise ProblemError(404, "unknown-rep", f"No rep '{rep_id}' is known.")
    planned, visits, attendance = await rep_day(conn, rep_id, day)
    plan = {p["outlet_id"] for p in planned}
    visited = {v["outlet_id"] for v in visits}
    return RepDay(
        rep_id=rep_id,
        name=found["name"],
        day=day,
        started_at=attendance["started_at"] if attendance else None,
        ended_at=attendance["ended_at"] if attendance else None,
        planned=[PlannedCall(**dict(p), visited=p["outlet_id"] in visited) for p in planned],
        visits=[
            DayVisit(
                **dict(v),
                sequence=i,
                planned=v["outlet_id"] in plan,
                minutes_spent=round((v["checked_out_at"] - v["checked_in_at"]).total_seconds() / 60)
                if v["checked_out_at"]
                else None,
            )
            for i, v in enumerate(visits, start=1)
        ],
    )
