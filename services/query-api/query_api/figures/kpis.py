"""KPI figures from summed measures: rates, period-over-period change, share of parent. Pure: no I/O.

Rates are null rather than zero when their denominator is zero: "no visits" is not a strike rate of 0.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal

from pydantic import BaseModel, Field


class KpiFigures(BaseModel):
    value: Decimal = Field(description="Secondary sales value in the period.")
    units: int
    lines: int = Field(description="Order lines in the period.")
    previous_value: Decimal = Field(description="Secondary sales value in the previous period of equal length.")
    previous_units: int
    value_change_pct: float | None = Field(description="(value - previous) / previous x 100; null without a base.")
    units_change_pct: float | None
    primary_value: Decimal | None = Field(description="Primary (sell-in) value; null at outlet level.")
    primary_units: int | None
    contribution_pct: float | None = Field(description="Share of the parent's secondary value (all rows), in %.")
    active_outlets: int = Field(description="Known outlets with an order in the dormancy window ending at `to`.")
    dormant_outlets: int = Field(description="Known outlets without one.")
    orders: int = Field(description="Orders captured: productive calls.")
    order_lines: int
    lines_per_call: float | None = Field(description="Order lines per productive call (order).")
    visits: int = Field(description="Visits (calls) recorded.")
    productive_visits: int
    strike_rate: float | None = Field(description="Productive visits / visits.")
    fill_ordered_units: int = Field(description="Units ordered in the period on orders that have a delivery.")
    fill_delivered_units: int = Field(description="Units delivered against them (at most the ordered units).")
    fill_rate: float | None = Field(description="fill_delivered_units / fill_ordered_units.")


class KpiRow(KpiFigures):
    id: str | None = Field(description="Node id at the requested level; null for sales not yet placed.")
    name: str | None


def ratio(numerator: Decimal | int, denominator: Decimal | int, digits: int = 4) -> float | None:
    return round(float(Decimal(numerator) / Decimal(denominator)), digits) if denominator else None


def change_pct(current: Decimal | int, previous: Decimal | int) -> float | None:
    return round(float((Decimal(current) - Decimal(previous)) * 100 / Decimal(previous)), 2) if previous else None


def figures(measures: Mapping[str, Decimal], parent_value: Decimal, with_primary: bool) -> KpiFigures:
    """The KPI figures of one node (or of the total) from its summed measures."""

    def n(name: str) -> int:
        return int(measures.get(name, Decimal(0)))

    value, previous = measures.get("value", Decimal(0)), measures.get("previous_value", Decimal(0))
    return KpiFigures(
        value=value,
        units=n("units"),
        lines=n("lines"),
        previous_value=previous,
        previous_units=n("previous_units"),
        value_change_pct=change_pct(value, previous),
        units_change_pct=change_pct(n("units"), n("previous_units")),
        primary_value=measures.get("primary_value", Decimal(0)) if with_primary else None,
        primary_units=n("primary_units") if with_primary else None,
        contribution_pct=round(float(value * 100 / parent_value), 2) if parent_value else None,
        active_outlets=n("active_outlets"),
        dormant_outlets=n("dormant_outlets"),
        orders=n("orders"),
        order_lines=n("order_lines"),
        lines_per_call=ratio(n("order_lines"), n("orders"), 2),
        visits=n("visits"),
        productive_visits=n("productive_visits"),
        strike_rate=ratio(n("productive_visits"), n("visits")),
        fill_ordered_units=n("fill_ordered_units"),
        fill_delivered_units=n("fill_delivered_units"),
        fill_rate=ratio(n("fill_delivered_units"), n("fill_ordered_units")),
    )


def sum_measures(nodes: Sequence[Mapping[str, Decimal]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for measures in nodes:
        for name, amount in measures.items():
            total[name] = total.get(name, Decimal(0)) + amount
    return total
