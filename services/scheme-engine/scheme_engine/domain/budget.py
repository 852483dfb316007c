"""Budget caps: who gets the last of a scheme's budget, decided by event time, never by arrival order.

Rule. A scheme's benefits consume its budget in event-time order: by the order's `occurred_at`, then its
event id on a tie. Each order is granted what it earned, reduced to the headroom left by the orders before
it: the smaller of the total budget's remainder and its outlet's per-outlet remainder, rounded down to
whole cents. A discount is reduced to exactly the headroom (a partial benefit); free goods are indivisible,
so as many whole free units as fit are granted and the rest of the headroom stays for later orders. A cap
is therefore never exceeded, and once a cap is spent later orders get nothing (`limited_by` says which cap
stopped them). Caps are scheme-wide and come from the scheme's latest recorded definition; a 0 cap grants
nothing, an absent one does not limit.

Why it is safe with offline sync. An order's grant depends only on the orders before it in event time, and
`allocate_budget` is a pure function of the set of benefits (sorted here, de-duplicated by order event id),
so every replay, in any arrival order, allocates the same. The consumer therefore:
- for an order later in event time than every order it has allocated for the scheme (the usual case),
  calls `evaluate` with the ledger of what was granted so far: the grant is final;
- for a late order (it sorts before orders already allocated), reruns `allocate_budget` over the scheme's
  benefits (only those from the late order onward can change), and emits a correction for every order
  whose grant changed, usually a later order that now gets less because the late one came first;
- when a scheme's budget is amended, reruns `allocate_budget` over the whole scheme the same way.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from uuid import UUID

from scheme_engine.domain.money import ZERO, floor_cents, split_pro_rata
from scheme_engine.domain.results import BudgetLimit, FreeGoods, SchemeBenefit, event_time_key
from sellthrough_contracts.schemes import SchemeDefinition

Headroom = tuple[Decimal | None, BudgetLimit | None]


@dataclass(frozen=True, slots=True)
class BudgetLedger:
    """What each scheme has granted so far, in total and per outlet, to orders earlier in event time than
    the one being evaluated. Treat as immutable: `record` returns a new ledger."""

    spent: Mapping[str, Decimal] = field(default_factory=dict)
    spent_by_outlet: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)

    @classmethod
    def of(cls, granted: Iterable[SchemeBenefit]) -> "BudgetLedger":
        ledger = cls()
        for benefit in granted:
            ledger = ledger.record(benefit)
        return ledger

    def record(self, benefit: SchemeBenefit) -> "BudgetLedger":
        scheme, outlet = benefit.scheme_id, (benefit.scheme_id, benefit.outlet_id)
        return BudgetLedger(
            {**self.spent, scheme: self.spent.get(scheme, ZERO) + benefit.value},
            {**self.spent_by_outlet, outlet: self.spent_by_outlet.get(outlet, ZERO) + benefit.value},
        )

    def headroom(self, caps: SchemeDefinition, outlet_id: str) -> Headroom:
        return headroom(
            caps,
            self.spent.get(caps.scheme_id, ZERO),
            self.spent_by_outlet.get((caps.scheme_id, outlet_id), ZERO),
        )


def headroom(caps: SchemeDefinition, spent: Decimal, spent_by_outlet: Decimal) -> Headroom:
    """The most the next order may be granted, and the cap that sets it; (None, None) when uncapped."""
    rooms: list[tuple[Decimal, BudgetLimit]] = []
    if caps.total_budget is not None:
        rooms.append((floor_cents(max(caps.total_budget - spent, ZERO)), "total_budget"))
    if caps.per_outlet_budget is not None:
        rooms.append((floor_cents(max(caps.per_outlet_budget - spent_by_outlet, ZERO)), "per_outlet_budget"))
    if not rooms:
        return None, None
    return min(rooms, key=lambda room: room[0])


def grant(benefit: SchemeBenefit, room: Decimal | None, limit: BudgetLimit | None) -> SchemeBenefit:
    """The benefit granted within `room`, recomputed from what it earned."""
    earned = benefit.as_earned()
    if room is None or earned.value <= room:
        return earned
    discount = min(earned.earned_discount, room)
    line_discounts = split_pro_rata(discount, [line.earned_discount for line in earned.lines])
    room -= discount
    free_goods: list[FreeGoods] = []
    for goods in earned.free_goods:
        units = goods.earned_units if goods.unit_cost == 0 else min(goods.earned_units, int(room // goods.unit_cost))
        granted = replace(goods, units=units)
        room -= granted.cost
        free_goods.append(granted)
    return replace(
        earned,
        lines=tuple(
            replace(line, discount_value=share) for line, share in zip(earned.lines, line_discounts, strict=True)
        ),
        free_goods=tuple(free_goods),
        limited_by=limit,
    )


def allocate_budget(scheme: SchemeDefinition, benefits: Iterable[SchemeBenefit]) -> list[SchemeBenefit]:
    """Grant each of `scheme`'s benefits its share of the budget by the event-time rule (module docstring).

    `benefits` may come in any order and repeat an order (the same event id with the same earned content
    counts once); the result is in event-time order. Pass the scheme's budget definition
    (`SchemeHistory.budget_definition`). Raises ValueError for another scheme's benefit or for two different
    benefits claiming the same order event."""
    by_event: dict[UUID, SchemeBenefit] = {}
    for benefit in benefits:
        if benefit.scheme_id != scheme.scheme_id:
            raise ValueError(f"benefit of scheme {benefit.scheme_id} allocated against {scheme.scheme_id}")
        earned = benefit.as_earned()
        known = by_event.setdefault(benefit.order_event_id, earned)
        if known != earned:
            raise ValueError(f"two different benefits for order event {benefit.order_event_id}")
    spent = ZERO
    spent_by_outlet: dict[str, Decimal] = {}
    allocated = []
    for benefit in sorted(by_event.values(), key=event_time_key):
        room, limit = headroom(scheme, spent, spent_by_outlet.get(benefit.outlet_id, ZERO))
        granted = grant(benefit, room, limit)
        spent += granted.value
        spent_by_outlet[benefit.outlet_id] = spent_by_outlet.get(benefit.outlet_id, ZERO) + granted.value
        allocated.append(granted)
    return allocated
