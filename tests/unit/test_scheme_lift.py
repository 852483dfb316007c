"""Scheme lift gives an estimate only from enough data (query_api/figures/scheme_lift.py)."""

from datetime import date, timedelta
from decimal import Decimal

from query_api.figures.scheme_lift import GroupSales, LiftInputs, lift

FIRST = date(2026, 3, 20)


def inputs(
    history_from: date | None, targeted: tuple[int, int], control: tuple[int, int], days: int = 10
) -> LiftInputs:
    """A scheme running `days` days from FIRST, its pre-period the `days` before; (pre, during) units per group."""
    return LiftInputs(
        FIRST,
        FIRST + timedelta(days=days - 1),
        FIRST - timedelta(days=days),
        days,
        history_from,
        GroupSales(2, targeted[1], targeted[0], Decimal(0), Decimal(0)),
        GroupSales(7, control[1], control[0], Decimal(0), Decimal(0)),
    )


def test_a_pre_period_wholly_within_history_gives_the_estimate() -> None:
    result = lift(inputs(FIRST - timedelta(days=10), targeted=(5, 20), control=(5, 6)), Decimal("21.00"))
    assert result.reason is None
    assert (result.pre_period_days_covered, result.pre_period_days_needed) == (10, 10)
    assert (result.expected_units, result.incremental_units, result.cost_per_incremental_unit) == (
        6.0,
        14.0,
        Decimal("1.5000"),
    )


def test_a_pre_period_only_partly_recorded_gives_a_reason_not_a_negative_lift() -> None:
    # Recording began 3 days before the scheme: the control group's "growth" is just the start of recording,
    # and the estimate would have been 50 x 60/3 = 1000 expected, 940 units of negative lift.
    partly = inputs(FIRST - timedelta(days=3), targeted=(50, 60), control=(3, 60))
    result = lift(partly, Decimal("21.00"))
    assert result.reason == "insufficient_history"
    assert (result.pre_period_days_covered, result.pre_period_days_needed) == (3, 10)
    assert (result.expected_units, result.incremental_units, result.cost_per_incremental_unit) == (None, None, None)
    assert (result.targeted_growth_pct, result.control_growth_pct) == (None, None)
    nothing = lift(inputs(None, targeted=(0, 6), control=(0, 6)), Decimal(0))
    assert (nothing.reason, nothing.pre_period_days_covered) == ("insufficient_history", 0)


def test_a_group_without_pre_period_sales_gives_no_baseline() -> None:
    result = lift(inputs(FIRST - timedelta(days=30), targeted=(5, 20), control=(0, 6)), Decimal("21.00"))
    assert result.reason == "insufficient_baseline"
    assert result.expected_units is None
    assert result.targeted_growth_pct == 300.0  # the group figures that exist are still shown


def test_the_cost_per_incremental_unit_is_an_exact_decimal_rounded_to_four_places() -> None:
    history = FIRST - timedelta(days=10)
    even = lift(inputs(history, targeted=(5, 20), control=(5, 6)), Decimal("21.00"))
    assert isinstance(even.cost_per_incremental_unit, Decimal)
    assert even.cost_per_incremental_unit == Decimal("1.5000")
    uneven = lift(inputs(history, targeted=(1, 4), control=(1, 1)), Decimal("10.00"))
    assert uneven.cost_per_incremental_unit == Decimal("3.3333")
