"""What one scheme's benefit rule gives one order, before stacking and budgets.

`earn` returns None when the order does not meet the rule's condition (no qualifying line, minimum quantity,
no slab or no complete buy-X set reached): the scheme does not apply to the order at all, so it neither
stacks nor blocks others. Amounts are computed on gross line values (quantity x unit price), never on
values already reduced by another scheme, so schemes do not depend on the order they are applied in.
"""

from collections.abc import Sequence
from decimal import Decimal

from scheme_engine.domain.money import ZERO, round_money, split_pro_rata
from scheme_engine.domain.order import OrderContext, OrderLineContext
from scheme_engine.domain.results import FreeGoods, LineBenefit, SchemeBenefit
from scheme_engine.domain.targeting import Audience
from sellthrough_contracts.schemes import (
    BuyXGetY,
    FlatDiscount,
    OrderValueSlabs,
    PercentDiscount,
    QuantitySlabs,
    SchemeDefinition,
)

Qualifying = Sequence[tuple[int, OrderLineContext]]
HUNDRED = Decimal(100)


def earn(definition: SchemeDefinition, audience: Audience, order: OrderContext) -> SchemeBenefit | None:
    """The benefit `definition` gives `order` by its rule alone; targeting and validity are checked by the caller."""
    qualifying = [(index, line) for index, line in enumerate(order.lines) if audience.qualifies(line)]
    if not qualifying:
        return None
    units = sum(line.quantity for _, line in qualifying)
    value = sum((line.gross_value for _, line in qualifying), Decimal(0))
    discounts: list[Decimal] | None = [ZERO] * len(qualifying)
    free_goods: tuple[FreeGoods, ...] = ()
    benefit = definition.benefit
    if isinstance(benefit, PercentDiscount):
        discounts = _percent_off(qualifying, benefit.percent) if units >= benefit.min_quantity else None
    elif isinstance(benefit, FlatDiscount):
        discounts = _flat_off(qualifying, benefit) if units >= benefit.min_quantity else None
    elif isinstance(benefit, QuantitySlabs):
        reached = [slab.percent for slab in benefit.slabs if slab.min_quantity <= units]
        discounts = _percent_off(qualifying, reached[-1]) if reached else None
    elif isinstance(benefit, OrderValueSlabs):
        reached = [slab.percent for slab in benefit.slabs if slab.min_value <= value]
        discounts = _percent_off(qualifying, reached[-1]) if reached else None
    else:
        free_goods = _free_goods(benefit, qualifying, order)
        if not free_goods:
            return None
    if discounts is None:
        return None
    return SchemeBenefit(
        scheme_id=definition.scheme_id,
        order_event_id=order.event_id,
        order_id=order.order_id,
        occurred_at=order.occurred_at,
        outlet_id=order.outlet_id,
        distributor_id=order.distributor_id,
        qualifying_units=units,
        qualifying_value=value,
        lines=tuple(
            LineBenefit(index, line.sku_id, line.quantity, line.gross_value, discount, discount)
            for (index, line), discount in zip(qualifying, discounts, strict=True)
        ),
        free_goods=free_goods,
    )


def line_value(line: OrderLineContext) -> Decimal:
    """A line's gross value in money: the most any discount, or all stacked discounts, may take off it."""
    return round_money(line.gross_value)


def _percent_off(qualifying: Qualifying, percent: Decimal) -> list[Decimal]:
    return [round_money(line.gross_value * percent / HUNDRED) for _, line in qualifying]


def _flat_off(qualifying: Qualifying, benefit: FlatDiscount) -> list[Decimal]:
    if benefit.per == "unit":
        return [min(round_money(benefit.amount * line.quantity), line_value(line)) for _, line in qualifying]
    # Once per order, spread over the lines by value so per-line detail still adds up to the discount.
    values = [line_value(line) for _, line in qualifying]
    return split_pro_rata(min(round_money(benefit.amount), sum(values, ZERO)), values)


def _free_goods(benefit: BuyXGetY, qualifying: Qualifying, order: OrderContext) -> tuple[FreeGoods, ...]:
    if benefit.free_sku_id is None:
        # Same-SKU free goods: each qualifying SKU is its own deal (a free unit of SKU A for buying SKU B
        # would be the other mode), valued at the lowest price that SKU carries on the order.
        by_sku: dict[str, tuple[int, Decimal]] = {}
        for _, line in qualifying:
            units, price = by_sku.get(line.sku_id, (0, line.unit_price))
            by_sku[line.sku_id] = (units + line.quantity, min(price, line.unit_price))
        return tuple(
            FreeGoods(sku_id, price, free, free)
            for sku_id, (units, price) in by_sku.items()
            if (free := _free_units(benefit, units))
        )
    free = _free_units(benefit, sum(line.quantity for _, line in qualifying))
    if not free:
        return ()
    prices = [line.unit_price for line in order.lines if line.sku_id == benefit.free_sku_id]
    unit_cost = min(prices) if prices else benefit.free_unit_cost
    if unit_cost is None:  # the contract requires free_unit_cost with free_sku_id; only a hand-built model lacks it
        raise ValueError(f"no price for free SKU {benefit.free_sku_id}: not on the order and no free_unit_cost")
    return (FreeGoods(benefit.free_sku_id, unit_cost, free, free),)


def _free_units(benefit: BuyXGetY, units_bought: int) -> int:
    sets = units_bought // benefit.buy_quantity
    if not benefit.repeating:
        sets = min(sets, 1)
    return sets * benefit.free_quantity
