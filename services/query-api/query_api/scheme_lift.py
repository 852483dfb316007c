"""Lift arithmetic over the sales of targeted and control outlets (method: scheme_queries.py docstring)."""

from dataclasses import dataclass
from decimal import Decimal

from query_api.scheme_queries import GroupSales, LiftInputs


@dataclass(frozen=True)
class Lift:
    targeted_growth_pct: float | None
    control_growth_pct: float | None
    expected_units: float
    incremental_units: float
    cost_per_incremental_unit: Decimal | None


def _growth(during: int, pre: int) -> float | None:
    return round((during - pre) / pre * 100, 2) if pre else None


def lift(inputs: LiftInputs, cost: Decimal) -> Lift:
    targeted, control = inputs.targeted, inputs.control
    expected = float(targeted.pre_units) * _control_factor(control)
    incremental = targeted.during_units - expected
    return Lift(
        targeted_growth_pct=_growth(targeted.during_units, targeted.pre_units),
        control_growth_pct=_growth(control.during_units, control.pre_units),
        expected_units=round(expected, 2),
        incremental_units=round(incremental, 2),
        # A cost per unit is meaningless when the scheme brought no extra units: say so with null.
        cost_per_incremental_unit=_per_unit(cost, incremental) if incremental > 0 else None,
    )


def _per_unit(cost: Decimal, units: float) -> Decimal:
    # Money stays decimal: the units are an estimate (a float), taken at their shortest exact form.
    return (cost / Decimal(repr(units))).quantize(Decimal("0.0001"))


def _control_factor(control: GroupSales) -> float:
    """How much the market moved on its own; 1 (no change) without control sales to compare."""
    if control.pre_units == 0:
        return 1.0
    return control.during_units / control.pre_units
