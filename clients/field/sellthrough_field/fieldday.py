"""A rep's working days, decided before anything is sent: the day's plan, whether the rep turns up, each call
(planned or not, skipped planned outlets, check-in and check-out, where the phone was) and what came of it (an
order or a no-order reason). Pure: a random.Random in, plain data out, so a seed gives the same field force
whatever the network does afterwards (simulate.py turns these days into events, queues and a ledger)."""

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sellthrough_field.reference import Outlet, Rep, World

EARTH_RADIUS_M = 6_371_000.0

DEFAULT_NO_ORDER_REASONS = ("stock sufficient", "shop closed", "owner absent", "credit limit reached")
"""order-capture's default `SELLTHROUGH_NO_ORDER_REASONS`. A copy, since the client never imports a service: a
brand that configures other reasons passes them to `simulate --no-order-reason`."""

WORKDAY_MINUTES = 480
"""The calls of a day fit in this many minutes after the day starts (08:30-09:10), so a day never crosses midnight
in the brand's zone, nor in one up to six hours east of the zone simulated."""

PlanSource = Literal["reference", "simulator"]
Verdict = Literal["on_site", "off_site", "outlet_not_geotagged"]
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


@dataclass(frozen=True)
class Fix:
    """A position the phone reports."""

    lat: float
    lon: float
    accuracy_m: float


@dataclass(frozen=True)
class Call:
    """One visit. Times are true times; the device adds its clock skew when it stamps them."""

    outlet: Outlet
    visit_id: str
    planned: bool
    checked_in_at: datetime
    checked_out_at: datetime
    check_in: Fix
    check_out: Fix
    off_site: bool
    """Captured kilometres away from the outlet, as a rep keying calls from home or a godown would."""
    distance_m: float
    order: tuple[tuple[str, int], ...]
    """(sku_id, quantity) of the order taken during the visit; empty: no order."""
    ordered_at: datetime | None
    order_fix: Fix | None
    no_order_reason: str | None

    @property
    def productive(self) -> bool:
        return bool(self.order)

    @property
    def verdict(self) -> Verdict:
        """The location verdict the simulator means order-capture to give the visit and its order."""
        if self.outlet.lat == 0 and self.outlet.lon == 0:
            return "outlet_not_geotagged"
        return "off_site" if self.off_site else "on_site"


@dataclass(frozen=True)
class DayPlan:
    outlet_ids: tuple[str, ...]
    source: PlanSource
    """`reference`: a BeatPlanned given to the simulator; `simulator`: made from the rep's beats."""


@dataclass(frozen=True)
class FieldDay:
    rep_id: str
    day: date
    plan: DayPlan | None
    absent: bool
    """A working day the rep never started: no events at all."""
    started_at: datetime | None
    start_fix: Fix | None
    ended_at: datetime | None
    end_fix: Fix | None
    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Shares:
    """How the field force behaves (simulate.Plan carries them)."""

    order_share: float
    off_site_share: float
    absent_share: float
    skip_share: float
    unplanned_share: float
    no_order_reasons: tuple[str, ...]


def moved(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    """A point `metres` away on a great circle: where an off-site capture claims to be."""
    d = metres / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


def route_for(routes: list[tuple[str, list[Outlet]]], day: date, day_index: int) -> list[Outlet]:
    """The day's beat. Beats named for a weekday (`...-MON`, as the demo brand has them) are walked on that day,
    and a day without one is a day off; other beats are walked in rotation, one a day."""
    code = _WEEKDAYS[day.weekday()]
    if any(beat.rsplit("-", 1)[-1] in _WEEKDAYS for beat, _ in routes):
        return next((outlets for beat, outlets in routes if beat.endswith(f"-{code}")), [])
    return routes[day_index % len(routes)][1]


class DayMaker:
    """Makes one rep's days; `run` keeps visit ids apart between runs of the same seed."""

    def __init__(self, world: World, shares: Shares, zone: ZoneInfo, rng: random.Random, run: str) -> None:
        self.world = world
        self.shares = shares
        self.zone = zone
        self.rng = rng
        self.run = run

    def days(self, rep: Rep, days: Sequence[date]) -> list[FieldDay]:
        routes = list(self.world.beats_of(rep).items())
        territory = {o.outlet_id: o for _, outlets in routes for o in outlets}
        out: list[FieldDay] = []
        for index, day in enumerate(days):
            plan = self._plan(rep, routes, day, index)
            if plan is None:
                continue  # a day off: no plan, nothing recorded
            out.append(self._day(rep, day, plan, territory))
        return out

    def _plan(self, rep: Rep, routes: list[tuple[str, list[Outlet]]], day: date, index: int) -> DayPlan | None:
        given = self.world.plans.get((rep.rep_id, day))
        if given is not None:
            return DayPlan(tuple(o for o in given if o in self.world.outlets), "reference")
        outlets = route_for(routes, day, index) if routes else []
        return DayPlan(tuple(o.outlet_id for o in outlets), "simulator") if outlets else None

    def _day(self, rep: Rep, day: date, plan: DayPlan, territory: dict[str, Outlet]) -> FieldDay:
        rng, s = self.rng, self.shares
        if rng.random() < s.absent_share:
            return FieldDay(rep.rep_id, day, plan, True, None, None, None, None, ())
        stops: list[tuple[Outlet, bool]] = []
        others = sorted(set(territory) - set(plan.outlet_ids))
        for outlet_id in plan.outlet_ids:
            if rng.random() >= s.skip_share:
                stops.append((self.world.outlets[outlet_id], True))
            # A call on the way at an outlet of the territory the plan left out: an unplanned visit.
            if others and rng.random() < s.unplanned_share:
                stops.append((territory[others.pop(rng.randrange(len(others)))], False))
        # In UTC from here: adding minutes to a zoned time is wall-clock arithmetic, wrong across a DST change.
        start = datetime.combine(day, time(8, 30), self.zone).astimezone(UTC) + self._minutes(0, 40)
        home = stops[0][0] if stops else next(iter(territory.values()), None)
        start_fix = self._near(home, 300, 1500) if home else None
        # Calls share the working day: a long beat gets shorter calls, never an evening past midnight.
        slot = min(60.0, WORKDAY_MINUTES / max(1, len(stops)))
        clock = start
        calls: list[Call] = []
        for n, (outlet, planned) in enumerate(stops, start=1):
            clock += self._minutes(0.2 * slot, 0.5 * slot)
            calls.append(self._call(rep, day, n, outlet, planned, clock, self._minutes(0.25 * slot, 0.5 * slot)))
            clock = calls[-1].checked_out_at
        end = clock + self._minutes(5, 30)
        end_fix = self._near(stops[-1][0], 100, 800) if stops else start_fix
        return FieldDay(rep.rep_id, day, plan, False, start, start_fix, end, end_fix, tuple(calls))

    def _call(
        self, rep: Rep, day: date, n: int, outlet: Outlet, planned: bool, check_in: datetime, spent: timedelta
    ) -> Call:
        rng, s = self.rng, self.shares
        off_site = rng.random() < s.off_site_share
        distance = rng.uniform(2_000, 8_000) if off_site else rng.uniform(0, 25)
        lat, lon = moved(outlet.lat, outlet.lon, distance, rng.uniform(0, 2 * math.pi))
        fix = Fix(lat, lon, round(rng.uniform(4, 20), 1))
        check_out = check_in + max(spent, timedelta(minutes=1))
        order: tuple[tuple[str, int], ...] = ()
        ordered_at = order_fix = reason = None
        if self.world.prices and rng.random() < s.order_share:
            skus = rng.sample(sorted(self.world.prices), k=rng.randint(1, min(3, len(self.world.prices))))
            order = tuple((sku, rng.randint(1, 24)) for sku in skus)
            ordered_at = check_in + (check_out - check_in) * rng.uniform(0.2, 0.8)
            order_fix = self._near_fix(fix, 10)
        else:
            reason = rng.choice(s.no_order_reasons)
        return Call(
            outlet=outlet,
            visit_id=f"V-{self.run}-{_short(rep.rep_id)}-{day:%m%d}-{n}",
            planned=planned,
            checked_in_at=check_in,
            checked_out_at=check_out,
            check_in=fix,
            check_out=self._near_fix(fix, 10),
            off_site=off_site,
            distance_m=round(distance, 1),
            order=order,
            ordered_at=ordered_at,
            order_fix=order_fix,
            no_order_reason=reason,
        )

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(low, high) * 60))

    def _near(self, outlet: Outlet, low: float, high: float) -> Fix:
        lat, lon = moved(outlet.lat, outlet.lon, self.rng.uniform(low, high), self.rng.uniform(0, 2 * math.pi))
        return Fix(lat, lon, round(self.rng.uniform(5, 30), 1))

    def _near_fix(self, fix: Fix, metres: float) -> Fix:
        lat, lon = moved(fix.lat, fix.lon, self.rng.uniform(0, metres), self.rng.uniform(0, 2 * math.pi))
        return Fix(lat, lon, round(self.rng.uniform(4, 20), 1))


def _short(rep_id: str) -> str:
    """The rep's id, or a digest of a long one: a visit id stays within the 64 characters of an Id."""
    return rep_id if len(rep_id) <= 32 else hashlib.sha256(rep_id.encode()).hexdigest()[:16]
