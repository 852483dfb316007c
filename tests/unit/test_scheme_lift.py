"""Scheme lift arithmetic: unit estimates are floats, money stays decimal."""

from datetime import date
from decimal import Decimal

from query_api.scheme_lift import lift
from query_api.scheme_queries import GroupSales, LiftInputs


def inputs(targeted: GroupSales, control: GroupSales) -> LiftInputs:
    return LiftInputs(date(2026, 3, 1), date(2026, 3, 7), date(2026, 2, 22), 7, targeted, control)


def test_the_cost_per_incremental_unit_is_an_exact_decimal() -> None:
    # Control grew 20% (5 -> 6), so 6 of the targeted outlets' 20 units were expected: 14 incremental.
    result = lift(
        inputs(
            GroupSales(2, 20, 5, Decimal("210.00"), Decimal("52.50")),
            GroupSales(3, 6, 5, Decimal("63.00"), Decimal("52.50")),
        ),
        Decimal("21.00"),
    )
    assert result.incremental_units == 14.0
    assert result.cost_per_incremental_unit == Decimal("1.5000")
    assert isinstance(result.cost_per_incremental_unit, Decimal)


def test_a_cost_that_does_not_divide_evenly_is_rounded_to_four_places() -> None:
    result = lift(
        inputs(GroupSales(1, 3, 0, Decimal("3"), Decimal("0")), GroupSales(1, 0, 0, Decimal("0"), Decimal("0"))),
        Decimal("10.00"),
    )
    assert result.cost_per_incremental_unit == Decimal("3.3333")


def test_no_incremental_units_means_no_cost_per_unit() -> None:
    flat = GroupSales(1, 5, 5, Decimal("50"), Decimal("50"))
    assert lift(inputs(flat, flat), Decimal("10.00")).cost_per_incremental_unit is None
