"""Field figures of a few hand-made rep days (query_api.figures.field), worked out by hand below."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from query_api.figures.field import Visit, clock, group_totals, ratio

DAY = date(2026, 10, 5)
IST = ZoneInfo("Asia/Kolkata")


def call(rep: str, outlet: str, hour: int, minute: int, spent: int | None, productive: bool) -> Visit:
    start = datetime(2026, 10, 5, hour, minute, tzinfo=UTC)
    end = start.replace(minute=minute + spent) if spent is not None else None
    return Visit(rep, DAY, outlet, start, end, productive)


def test_a_planned_day_with_a_repeat_an_unplanned_call_and_an_unchecked_out_last_call() -> None:
    plans = {("REP-1", DAY): ["O1", "O2", "O3"], ("REP-2", DAY): ["O4"]}
    visits = [
        call("REP-1", "O1", 4, 0, 20, True),  # 09:30 IST
        call("REP-1", "O1", 5, 0, 10, False),  # O1 again: counts once towards compliance
        call("REP-1", "O9", 6, 0, 15, True),  # not planned
        call("REP-1", "O2", 7, 30, None, False),  # 13:00 IST, never checked out
    ]
    totals = group_totals(plans, visits, [("REP-1", DAY)], {"REP-1": "D1", "REP-2": "D1"}.get, IST)
    d1 = totals["D1"]
    # Planned 3 + 1 (REP-2 planned and never started: absent); visited O1 and O2 of REP-1's plan.
    assert (d1.planned, d1.planned_visited, ratio(d1.planned_visited, d1.planned)) == (4, 2, Decimal("0.5000"))
    assert (d1.visits, d1.productive, d1.unplanned) == (4, 2, 1)
    assert (d1.attended_days, d1.absent_days, d1.reps) == (1, 1, {"REP-1", "REP-2"})
    # First check-in 09:30 IST, last 13:00 IST; in market 04:00 to 07:30 UTC (the last call's check-in).
    assert (clock(d1.first_call_minutes, d1.days_with_calls), clock(d1.last_call_minutes, 1)) == ("09:30", "13:00")
    assert (d1.market_minutes, d1.outlet_minutes) == (210, 45)


def test_nothing_to_divide_by_is_none_not_zero() -> None:
    assert ratio(0, 0) is None
    assert clock(0, 0) is None
