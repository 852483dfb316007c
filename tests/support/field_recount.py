"""Field-force figures recomputed from what a test (or the simulator's ledger) says happened, written apart from
query_api.figures.field so a test can hold GET /v1/field/performance against them.

The definitions, from README "Visits, beats and attendance": per rep and day, beat compliance counts the planned
outlets called on at least once over the outlets planned; a visit to an outlet off that day's plan is unplanned;
first and last call are the day's first and last check-in (time of day in the brand's zone, averaged over days
with calls, to the minute); time in market runs from the first check-in to the last check-out; a day is attended
when started, absent when it had a non-empty plan and was never started."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

RepDay = tuple[str, date]


@dataclass(frozen=True)
class Call:
    rep: str
    outlet: str
    checked_in: datetime
    checked_out: datetime
    productive: bool


@dataclass(frozen=True)
class FieldForce:
    plans: dict[RepDay, list[str]]
    calls: list[Call]
    started: set[RepDay]


@dataclass
class Figures:
    reps: set[str] = field(default_factory=set)
    planned: int = 0
    hit: int = 0
    visits: int = 0
    productive: int = 0
    unplanned: int = 0
    attended: int = 0
    absent: int = 0
    days_with_calls: int = 0
    first_calls: list[int] = field(default_factory=list)
    last_calls: list[int] = field(default_factory=list)
    market_minutes: int = 0
    outlet_minutes: int = 0

    def row(self) -> dict[str, Any]:
        """As GET /v1/field/performance shows a row (ids and names aside)."""
        return {
            "reps": len(self.reps),
            "planned_outlets": self.planned,
            "planned_visited": self.hit,
            "beat_compliance": _share(self.hit, self.planned),
            "visits": self.visits,
            "productive_visits": self.productive,
            "productive_share": _share(self.productive, self.visits),
            "unplanned_visits": self.unplanned,
            "days_with_calls": self.days_with_calls,
            "avg_first_call": _clock(self.first_calls),
            "avg_last_call": _clock(self.last_calls),
            "time_in_market_minutes": self.market_minutes,
            "time_at_outlets_minutes": self.outlet_minutes,
            "attended_days": self.attended,
            "absent_days": self.absent,
        }


def _share(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


def _clock(minutes: list[int]) -> str | None:
    if not minutes:
        return None
    mean = round(sum(minutes) / len(minutes))
    return f"{mean // 60:02d}:{mean % 60:02d}"


def _minutes(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() / 60)


def recount(force: FieldForce, group_of: Callable[[str], str | None], zone: ZoneInfo) -> dict[str | None, Figures]:
    calls_by_day: dict[RepDay, list[Call]] = defaultdict(list)
    for call in force.calls:
        calls_by_day[(call.rep, call.checked_in.astimezone(zone).date())].append(call)
    out: dict[str | None, Figures] = defaultdict(Figures)
    for rep, day in set(force.plans) | set(calls_by_day) | force.started:
        f = out[group_of(rep)]
        f.reps.add(rep)
        plan = force.plans.get((rep, day), [])
        calls = calls_by_day.get((rep, day), [])
        f.planned += len(plan)
        f.hit += sum(1 for outlet in plan if any(c.outlet == outlet for c in calls))
        f.visits += len(calls)
        f.productive += sum(1 for c in calls if c.productive)
        f.unplanned += sum(1 for c in calls if c.outlet not in plan)
        f.attended += (rep, day) in force.started
        f.absent += len(plan) > 0 and (rep, day) not in force.started
        if calls:
            f.days_with_calls += 1
            first = min(c.checked_in for c in calls).astimezone(zone)
            last = max(c.checked_in for c in calls).astimezone(zone)
            f.first_calls.append(first.hour * 60 + first.minute)
            f.last_calls.append(last.hour * 60 + last.minute)
            f.market_minutes += _minutes(min(c.checked_in for c in calls), max(c.checked_out for c in calls))
            f.outlet_minutes += sum(_minutes(c.checked_in, c.checked_out) for c in calls)
    return dict(out)


def from_ledger(ledger: Mapping[str, Any], zone: ZoneInfo) -> FieldForce:
    """The field force `sellthrough-field simulate` wrote in ledger.json: plans as order-capture knows them (a
    plan the simulator kept to its ledger, without a planner token, is not), visits with the times the devices
    sent, and the days started."""
    plans: dict[RepDay, list[str]] = {}
    calls: list[Call] = []
    started: set[RepDay] = set()
    days: Iterable[Mapping[str, Any]] = ledger["days"]
    for d in days:
        rep, day = d["rep_id"], date.fromisoformat(d["day"])
        plan = d["plan"]
        if plan is not None and (plan["source"] == "reference" or ledger["plans"] == "published"):
            plans[(rep, day)] = list(plan["outlet_ids"])
        if d["started_at"] is not None:
            started.add((rep, datetime.fromisoformat(d["started_at"]).astimezone(zone).date()))
        for v in d["visits"]:
            calls.append(
                Call(
                    rep,
                    v["outlet_id"],
                    datetime.fromisoformat(v["checked_in_at"]),
                    datetime.fromisoformat(v["checked_out_at"]),
                    v["productive"],
                )
            )
    return FieldForce(plans, calls, started)
