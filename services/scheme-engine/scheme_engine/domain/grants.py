"""What a scheme grants each order, and which grants changed since they were last emitted. Pure: no I/O.

The budget rule (budget.py) makes an order's grant depend on every order of the scheme before it in event
time, so whenever a scheme is touched (a new or cancelled order, a late one, a new definition) the whole
scheme is re-allocated from the stored earned benefits, and only grants that differ from the last emitted one
are emitted again, with the next revision. An order that no longer earns (cancelled, or a new definition
excludes it) gets a zero grant, so readers that keep the newest revision drop it; one whose goods came back
from the retailer is granted less (returns.py), again as a new revision.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from scheme_engine.domain.budget import allocate_budget
from scheme_engine.domain.history import SchemeHistory
from scheme_engine.domain.results import SchemeBenefit
from scheme_engine.domain.returns import RetailerReturn, reverse_returns

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Grant:
    scheme_id: str
    order_event_id: UUID
    order_id: str
    outlet_id: str
    distributor_id: str
    occurred_at: datetime
    qualifying_units: int
    discount_value: Decimal
    free_units: int
    free_units_cost: Decimal
    limited_by: str | None

    @classmethod
    def of(cls, benefit: SchemeBenefit) -> "Grant":
        return cls(
            benefit.scheme_id,
            benefit.order_event_id,
            benefit.order_id,
            benefit.outlet_id,
            benefit.distributor_id,
            benefit.occurred_at,
            benefit.qualifying_units,
            benefit.discount_value,
            benefit.free_units,
            benefit.free_units_cost,
            benefit.limited_by,
        )

    def nothing(self) -> "Grant":
        """What this order is granted once it no longer earns under the scheme."""
        return Grant(
            self.scheme_id,
            self.order_event_id,
            self.order_id,
            self.outlet_id,
            self.distributor_id,
            self.occurred_at,
            0,
            ZERO,
            0,
            ZERO,
            None,
        )

    @property
    def figures(self) -> tuple[object, ...]:
        return (self.qualifying_units, self.discount_value, self.free_units, self.free_units_cost, self.limited_by)


@dataclass(frozen=True, slots=True)
class Applied:
    """A grant as last emitted (SchemeApplied), with its revision."""

    grant: Grant
    revision: int


def allocated(history: SchemeHistory | None, earned: list[SchemeBenefit]) -> list[SchemeBenefit]:
    """The scheme's earned benefits as granted under its budget (before retailer returns), in event-time order."""
    caps = history.budget_definition if history is not None else None
    if caps is None or not earned:
        return []
    return allocate_budget(caps, earned)


def after_returns(allocated: list[SchemeBenefit], returns: Iterable[RetailerReturn]) -> list[SchemeBenefit]:
    """What stays granted once the retailer returns at the granted outlets are reversed."""
    return reverse_returns(allocated, list(returns))


def changed_grants(benefits: Iterable[SchemeBenefit], applied: Mapping[UUID, Applied]) -> list[tuple[Grant, int]]:
    """The grants that differ from the last emitted ones, in event-time order, each with its next revision."""
    grants = {b.order_event_id: Grant.of(b) for b in benefits}
    for event_id, previous in applied.items():
        grants.setdefault(event_id, previous.grant.nothing())
    changed: list[tuple[Grant, int]] = []
    for event_id in sorted(grants, key=lambda e: (grants[e].occurred_at, e)):
        grant, before = grants[event_id], applied.get(event_id)
        if before is not None and before.grant.figures == grant.figures:
            continue
        changed.append((grant, (before.revision if before is not None else 0) + 1))
    return changed
