"""Which schemes an order earns, and what each grants it.

1. In effect: a scheme counts when the version in effect at the order's occurred_at (event time, not
   arrival time; see history.py) covers it, targets it (targeting.py) and its rule gives the order
   something (benefits.py: qualifying lines, minimum quantity, slab or buy-X set reached).
2. Stacking: those schemes are ranked by (priority, scheme_id), lower priority number first. If the first
   is exclusive, only it applies. Otherwise every non-exclusive scheme applies and every exclusive one is
   skipped: an exclusive scheme applies only when it outranks all the others that apply. Stacking does not
   look at budgets, so a scheme with its budget spent still holds its rank (and grants nothing): this keeps
   each scheme's budget independent of every other's, which is what lets the consumer re-allocate one
   scheme alone after a late order.
3. Stacked discounts never take a line below zero: in rank order, each scheme's discount on a line is
   clipped to what the schemes ranked above it left of the line's value.
4. Budget: each benefit is granted within its scheme's headroom in `budget_ledger` (budget.py), which must
   hold what was granted to orders earlier in event time than this one.

Money: Decimal, ROUND_HALF_UP to 2 places per line amount (money.py).
"""

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from scheme_engine.domain.benefits import earn, line_value
from scheme_engine.domain.budget import BudgetLedger, grant
from scheme_engine.domain.history import SchemesState
from scheme_engine.domain.money import ZERO
from scheme_engine.domain.order import OrderContext
from scheme_engine.domain.results import SchemeBenefit
from sellthrough_contracts.schemes import SchemeDefinition

Candidate = tuple[SchemeDefinition, SchemeBenefit]


def evaluate(
    order: OrderContext, schemes_state: SchemesState, budget_ledger: BudgetLedger | None = None
) -> list[SchemeBenefit]:
    """The benefits `order` gets, in stacking order. Pure: the same inputs always give the same output."""
    ledger = budget_ledger or BudgetLedger()
    applied = _clip_to_line_values(stack(earned_benefits(order, schemes_state)), order)
    granted = []
    for _, benefit in applied:
        history = schemes_state.schemes[benefit.scheme_id]
        caps = history.budget_definition
        room, limit = ledger.headroom(caps, benefit.outlet_id) if caps is not None else (None, None)
        granted.append(grant(benefit, room, limit))
    return granted


def earned_benefits(order: OrderContext, schemes_state: SchemesState) -> list[Candidate]:
    """Every scheme in effect for the order and what its rule alone gives, before stacking and budgets."""
    candidates = []
    for history in schemes_state.histories():
        version = history.version_at(order.occurred_at)
        if version is None or not version.audience.targets(order):
            continue
        benefit = earn(version.definition, version.audience, order)
        if benefit is not None:
            candidates.append((version.definition, benefit))
    return candidates


def stack(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The schemes that apply together (module docstring, rule 2), in rank order."""
    ranked = sorted(candidates, key=lambda c: (c[0].priority, c[0].scheme_id))
    if not ranked:
        return []
    if ranked[0][0].exclusive:
        return ranked[:1]
    return [candidate for candidate in ranked if not candidate[0].exclusive]


def _clip_to_line_values(applied: list[Candidate], order: OrderContext) -> list[Candidate]:
    taken: dict[int, Decimal] = {}
    clipped = []
    for definition, benefit in applied:
        lines = []
        for line in benefit.lines:
            left = max(line_value(order.lines[line.line_index]) - taken.get(line.line_index, ZERO), ZERO)
            discount = min(line.earned_discount, left)
            taken[line.line_index] = taken.get(line.line_index, ZERO) + discount
            lines.append(replace(line, earned_discount=discount, discount_value=discount))
        clipped.append((definition, replace(benefit, lines=tuple(lines))))
    return clipped
