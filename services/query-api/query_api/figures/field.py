"""Field-force figures from a range of beat plans, visits and attendance. Pure: no I/O.

Per rep and day: beat compliance counts the planned outlets visited (each once, whatever the number of calls)
over the outlets planned; a visit to an outlet not on that day's plan is unplanned (every visit is, on a day
without a plan); first and last call are the first and the last check-in; time in market runs from the first
check-in to the last check-out (or check-in, when the last call was not checked out); a day is attended when the
rep started it, absent when it had a non-empty plan and the rep never started it. Those are summed per group
(region, distributor or rep), times of day averaged over the days with calls."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

RepDay = tuple[str, date]


@dataclass(frozen=True)
class Visit:
    rep_id: str
    day: date
    outlet_id: str
    checked_in_at: datetime
    checked_out_at: datetime | None
    productive: bool


@dataclass
class Totals:
    planned: int = 0
    planned_visited: int = 0
    visits: int = 0
    productive: int = 0
    unplanned: int = 0
    days_with_calls: int = 0
    first_call_minutes: int = 0
    last_call_minutes: int = 0
    market_minutes: int = 0
    outlet_minutes: int = 0
    attended_days: int = 0
    absent_days: int = 0
    reps: set[str] = field(default_factory=set)


def _minutes(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() / 60)


def _time_of_day(at: datetime, zone: ZoneInfo) -> int:
    local = at.astimezone(zone)
    return local.hour * 60 + local.minute


def day_figures(
    planned: Sequence[str], visits: Sequence[Visit], attended: bool, zone: ZoneInfo, totals: Totals
) -> None:
    """Adds one rep's day to `totals`."""
    plan = set(planned)
    visited = {v.outlet_id for v in visits}
    totals.planned += len(plan)
    totals.planned_visited += len(plan & visited)
    totals.visits += len(visits)
    totals.productive += sum(v.productive for v in visits)
    totals.unplanned += sum(v.outlet_id not in plan for v in visits)
    totals.attended_days += attended
    totals.absent_days += bool(plan) and not attended
    if visits:
        first = min(v.checked_in_at for v in visits)
        last = max(v.checked_in_at for v in visits)
        end = max(v.checked_out_at or v.checked_in_at for v in visits)
        totals.days_with_calls += 1
        totals.first_call_minutes += _time_of_day(first, zone)
        totals.last_call_minutes += _time_of_day(last, zone)
        totals.market_minutes += _minutes(first, end)
        totals.outlet_minutes += sum(_minutes(v.checked_in_at, v.checked_out_at) for v in visits if v.checked_out_at)


def group_totals(
    plans: Mapping[RepDay, Sequence[str]],
    visits: Iterable[Visit],
    attended: Iterable[RepDay],
    group_of: Callable[[str], str | None],
    zone: ZoneInfo,
) -> dict[str | None, Totals]:
    by_day: dict[RepDay, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_day[(visit.rep_id, visit.day)].append(visit)
    started = set(attended)
    totals: dict[str | None, Totals] = defaultdict(Totals)
    for rep_day in sorted(set(plans) | set(by_day) | started):
        group = totals[group_of(rep_day[0])]
        group.reps.add(rep_day[0])
        day_figures(plans.get(rep_day, ()), by_day.get(rep_day, []), rep_day in started, zone, group)
    return dict(totals)


def ratio(part: int, whole: int) -> Decimal | None:
    """part / whole to four places; None when there is nothing to divide by."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def clock(minutes: int, days: int) -> str | None:
    """An average time of day as HH:MM; None without days."""
    if days == 0:
        return None
    average = round(minutes / days)
    return f"{average // 60:02d}:{average % 60:02d}"
