"""Lift arithmetic over the sales of targeted and control outlets (method: reads/schemes.py docstring).

An estimate is given only from enough data: the whole pre-period within recorded history, and pre-period
sales in both groups. Otherwise the estimate's fields are null and `reason` says why, rather than a number
that only reflects missing data.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True)
class GroupSales:
    outlets: int
    during_units: int
    pre_units: int
    during_value: Decimal
    pre_value: Decimal


@dataclass(frozen=True)
class LiftInputs:
    first_day: date
    last_day: date
    pre_from: date
    days: int
    history_from: date | None
    """The first day with any recorded secondary sale (None: none yet)."""
    targeted: GroupSales
    control: GroupSales


LiftReason = Literal["insufficient_history", "insufficient_baseline"]


@dataclass(frozen=True)
class Lift:
    reason: LiftReason | None
    """Why there is no estimate; None when there is one."""
    pre_period_days_covered: int
    pre_period_days_needed: int
    targeted_growth_pct: float | None
    control_growth_pct: float | None
    expected_units: float | None
    incremental_units: float | None
    cost_per_incremental_unit: Decimal | None


def _growth(during: int, pre: int) -> float | None:
    return round((during - pre) / pre * 100, 2) if pre else None


def days_covered(inputs: LiftInputs) -> int:
    """Days of the pre-period on or after the first recorded sale."""
    if inputs.history_from is None:
        return 0
    start = max(inputs.pre_from, inputs.history_from)
    return max(0, min(inputs.days, (inputs.first_day - start).days))


def lift(inputs: LiftInputs, cost: Decimal) -> Lift:
    targeted, control = inputs.targeted, inputs.control
    covered = days_covered(inputs)
    if covered < inputs.days:
        # Growth from a partly recorded pre-period is an artefact of when recording began: none is shown.
        return Lift("insufficient_history", covered, inputs.days, None, None, None, None, None)
    targeted_growth = _growth(targeted.during_units, targeted.pre_units)
    control_growth = _growth(control.during_units, control.pre_units)
    if targeted.pre_units == 0 or control.pre_units == 0:
        return Lift("insufficient_baseline", covered, inputs.days, targeted_growth, control_growth, None, None, None)
    expected = float(targeted.pre_units) * control.during_units / control.pre_units
    incremental = targeted.during_units - expected
    return Lift(
        reason=None,
        pre_period_days_covered=covered,
        pre_period_days_needed=inputs.days,
        targeted_growth_pct=targeted_growth,
        control_growth_pct=control_growth,
        expected_units=round(expected, 2),
        incremental_units=round(incremental, 2),
        # A cost per unit is meaningless when the scheme brought no extra units: say so with null.
        cost_per_incremental_unit=_per_unit(cost, incremental) if incremental > 0 else None,
    )


def _per_unit(cost: Decimal, units: float) -> Decimal:
    # Money stays decimal: the units are an estimate (a float), taken at their shortest exact form.
    return (cost / Decimal(repr(units))).quantize(Decimal("0.0001"))
