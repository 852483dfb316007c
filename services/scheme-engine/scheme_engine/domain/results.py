"""What an order earns under one scheme, and how much of it the budget grants.

Every detail carries both figures: `earned_*` is what the scheme's rules give the order, the plain field is
what was granted after budget caps. Granting is always recomputed from the earned figures, so a benefit
can be re-allocated any number of times (see budget.py).
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from scheme_engine.domain.money import ZERO, round_money

BudgetLimit = Literal["total_budget", "per_outlet_budget"]


@dataclass(frozen=True, slots=True)
class LineBenefit:
    """A qualifying order line and the discount it gets."""

    line_index: int
    sku_id: str
    quantity: int
    gross_value: Decimal
    earned_discount: Decimal
    discount_value: Decimal


@dataclass(frozen=True, slots=True)
class FreeGoods:
    sku_id: str
    unit_cost: Decimal
    earned_units: int
    units: int

    @property
    def cost(self) -> Decimal:
        return round_money(self.unit_cost * self.units)

    @property
    def earned_cost(self) -> Decimal:
        return round_money(self.unit_cost * self.earned_units)


@dataclass(frozen=True, slots=True)
class SchemeBenefit:
    scheme_id: str
    order_event_id: UUID
    order_id: str
    occurred_at: datetime
    outlet_id: str
    distributor_id: str
    qualifying_units: int
    qualifying_value: Decimal
    lines: tuple[LineBenefit, ...]
    free_goods: tuple[FreeGoods, ...] = ()
    limited_by: BudgetLimit | None = None

    @property
    def discount_value(self) -> Decimal:
        return sum((line.discount_value for line in self.lines), ZERO)

    @property
    def free_units(self) -> int:
        return sum(goods.units for goods in self.free_goods)

    @property
    def free_units_cost(self) -> Decimal:
        return sum((goods.cost for goods in self.free_goods), ZERO)

    @property
    def value(self) -> Decimal:
        """What the granted benefit costs the scheme's budget: discount plus free goods at cost."""
        return self.discount_value + self.free_units_cost

    @property
    def earned_discount(self) -> Decimal:
        return sum((line.earned_discount for line in self.lines), ZERO)

    @property
    def earned_value(self) -> Decimal:
        return self.earned_discount + sum((goods.earned_cost for goods in self.free_goods), ZERO)

    def as_earned(self) -> "SchemeBenefit":
        """The benefit with everything it earned granted, as before any budget cap."""
        return replace(
            self,
            lines=tuple(replace(line, discount_value=line.earned_discount) for line in self.lines),
            free_goods=tuple(replace(goods, units=goods.earned_units) for goods in self.free_goods),
            limited_by=None,
        )


def event_time_key(benefit: SchemeBenefit) -> tuple[datetime, UUID]:
    """The order budgets are consumed in: when the order was taken, then its event id on a tie."""
    return benefit.occurred_at, benefit.order_event_id
