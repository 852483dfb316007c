"""Assessing a distributor's claim for a scheme against the benefits the engine captured.

Inputs:
- the claim: distributor, scheme, period [period_start, period_end) in event time, the amount claimed and
  optionally lines per outlet (optionally naming one order);
- `entitled_benefits`: the granted benefits the engine captured for the scheme (any distributor, any time;
  those of the claim's distributor whose order falls in the period count). They are taken as complete: an
  order in them earned exactly what they say;
- `scheme`: the scheme's history, to tell whether an order fell inside its validity and targeting;
- `orders`: the captured orders the engine holds for the claimed outlets (any time), so a line without a
  benefit can be explained.

Amounts: entitled = sum of the counted benefits' granted values. Without lines, approved = min(claimed,
entitled). With lines, each line is assessed on its own and approved = the sum of the lines' approvals,
which is never more than min(claimed, entitled) and is lower when the distributor attributes money to
outlets or orders that did not earn it (paying one outlet's over-claim out of another's unclaimed
entitlement would approve claims nobody can justify). Over-claim = claimed - approved, which without lines
is claimed - entitled floored at 0. Each line draws, in the order the lines are listed, on the remaining
entitlement of the benefits it matches (its outlet, and its order when it names one), so two lines cannot
both be paid from one order's benefit.

Reasons. A line claiming something but matching no benefit gets the first that holds, checked on the
distributor's orders for the outlet (and order):
- `no_captured_order`: there is none;
- `order_outside_validity`: none falls inside both the claim period and a version of the scheme in effect
  (validity window, amendments, early end);
- `outlet_not_targeted`: no such order is targeted by the version in effect for it;
- `excluded_by_stacking`: an order met the scheme's condition but another scheme took precedence;
- `slab_not_reached`: the orders did not meet the condition (no qualifying SKU, minimum quantity, slab or
  buy quantity not reached).
Any line claiming more than it can draw also gets `budget_exhausted` when a budget cap cut one of its
benefits, and `claimed_more_than_entitled`. A claim with lines lists its lines' reasons, each once; a claim
without lines gets the same reasons, explained over all of the distributor's orders.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from scheme_engine.domain.benefits import earn
from scheme_engine.domain.history import SchemeHistory
from scheme_engine.domain.money import CENT, ZERO
from scheme_engine.domain.order import OrderContext
from scheme_engine.domain.results import SchemeBenefit, event_time_key
from sellthrough_contracts.schemes import ClaimReason, SchemeClaimSubmitted


def _check_amount(amount: Decimal, what: str) -> None:
    if amount < 0 or amount != amount.quantize(CENT):
        raise ValueError(f"{what} must be a non-negative amount in whole cents, got {amount}")


@dataclass(frozen=True, slots=True)
class ClaimLine:
    outlet_id: str
    amount: Decimal
    order_id: str | None = None

    def __post_init__(self) -> None:
        _check_amount(self.amount, "claim line amount")


@dataclass(frozen=True, slots=True)
class Claim:
    claim_id: str
    scheme_id: str
    distributor_id: str
    period_start: datetime
    period_end: datetime
    amount: Decimal
    lines: tuple[ClaimLine, ...] = ()

    def __post_init__(self) -> None:
        _check_amount(self.amount, "claimed amount")
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start (period_end is exclusive)")
        if self.lines and sum((line.amount for line in self.lines), ZERO) != self.amount:
            raise ValueError("claim lines must add up to the claimed amount")

    def covers(self, at: datetime) -> bool:
        return self.period_start <= at < self.period_end


@dataclass(frozen=True, slots=True)
class ClaimLineAssessment:
    outlet_id: str
    order_id: str | None
    claimed_amount: Decimal
    entitled_amount: Decimal
    approved_amount: Decimal
    over_claim_amount: Decimal
    reasons: tuple[ClaimReason, ...]


@dataclass(frozen=True, slots=True)
class ClaimAssessment:
    claim_id: str
    scheme_id: str
    distributor_id: str
    claimed_amount: Decimal
    entitled_amount: Decimal
    over_claim_amount: Decimal
    approved_amount: Decimal
    reasons: tuple[ClaimReason, ...]
    lines: tuple[ClaimLineAssessment, ...]


def assess_claim(
    claim: Claim,
    entitled_benefits: Iterable[SchemeBenefit],
    *,
    scheme: SchemeHistory,
    orders: Iterable[OrderContext],
) -> ClaimAssessment:
    """Amounts and reasons for `claim` (module docstring). Pure. Raises ValueError when `scheme` is not the
    claim's scheme or two different benefits name the same order event."""
    if scheme.scheme_id != claim.scheme_id:
        raise ValueError(f"claim for scheme {claim.scheme_id} assessed against {scheme.scheme_id}")
    counted = _counted(claim, entitled_benefits)
    own_orders = [order for order in orders if order.distributor_id == claim.distributor_id]
    entitled = sum((benefit.value for benefit in counted), ZERO)
    remaining = {benefit.order_event_id: benefit.value for benefit in counted}
    lines = tuple(_assess_line(claim, line, counted, remaining, scheme, own_orders) for line in claim.lines)
    if lines:
        approved = sum((line.approved_amount for line in lines), ZERO)
        reasons = tuple(dict.fromkeys(reason for line in lines for reason in line.reasons))
    else:
        approved = min(claim.amount, entitled)
        reasons = _why_nothing(claim, scheme, own_orders) if not counted and claim.amount > 0 else ()
        reasons += _over_claim_reasons(claim.amount, entitled, counted)
    return ClaimAssessment(
        claim_id=claim.claim_id,
        scheme_id=claim.scheme_id,
        distributor_id=claim.distributor_id,
        claimed_amount=claim.amount,
        entitled_amount=entitled,
        over_claim_amount=claim.amount - approved,
        approved_amount=approved,
        reasons=reasons,
        lines=lines,
    )


def _counted(claim: Claim, benefits: Iterable[SchemeBenefit]) -> list[SchemeBenefit]:
    """The claim's benefits, one per order event, in event-time order."""
    by_event: dict[UUID, SchemeBenefit] = {}
    for benefit in benefits:
        ours = benefit.scheme_id == claim.scheme_id and benefit.distributor_id == claim.distributor_id
        if (
            ours
            and claim.covers(benefit.occurred_at)
            and by_event.setdefault(benefit.order_event_id, benefit) != benefit
        ):
            raise ValueError(f"two different benefits for order event {benefit.order_event_id}")
    return sorted(by_event.values(), key=event_time_key)


def _assess_line(
    claim: Claim,
    line: ClaimLine,
    counted: Sequence[SchemeBenefit],
    remaining: dict[UUID, Decimal],
    scheme: SchemeHistory,
    orders: Sequence[OrderContext],
) -> ClaimLineAssessment:
    matching = [
        benefit
        for benefit in counted
        if benefit.outlet_id == line.outlet_id and line.order_id in (None, benefit.order_id)
    ]
    available = sum((remaining[benefit.order_event_id] for benefit in matching), ZERO)
    approved = min(line.amount, available)
    to_draw = approved
    for benefit in matching:
        drawn = min(remaining[benefit.order_event_id], to_draw)
        remaining[benefit.order_event_id] -= drawn
        to_draw -= drawn
    reasons: tuple[ClaimReason, ...] = ()
    if not matching and line.amount > 0:
        relevant = [
            order for order in orders if order.outlet_id == line.outlet_id and line.order_id in (None, order.order_id)
        ]
        reasons = _why_nothing(claim, scheme, relevant)
    reasons += _over_claim_reasons(line.amount, available, matching)
    return ClaimLineAssessment(
        outlet_id=line.outlet_id,
        order_id=line.order_id,
        claimed_amount=line.amount,
        entitled_amount=available,
        approved_amount=approved,
        over_claim_amount=line.amount - approved,
        reasons=reasons,
    )


def _over_claim_reasons(
    claimed: Decimal, entitled: Decimal, benefits: Sequence[SchemeBenefit]
) -> tuple[ClaimReason, ...]:
    if claimed <= entitled:
        return ()
    if any(benefit.limited_by is not None for benefit in benefits):
        return ("budget_exhausted", "claimed_more_than_entitled")
    return ("claimed_more_than_entitled",)


def _why_nothing(claim: Claim, scheme: SchemeHistory, orders: Sequence[OrderContext]) -> tuple[ClaimReason, ...]:
    """Why these orders earned nothing under the scheme (module docstring, first reason that holds)."""
    if not orders:
        return ("no_captured_order",)
    in_effect = [
        (order, version)
        for order in orders
        if claim.covers(order.occurred_at) and (version := scheme.version_at(order.occurred_at)) is not None
    ]
    if not in_effect:
        return ("order_outside_validity",)
    targeted = [(order, version) for order, version in in_effect if version.audience.targets(order)]
    if not targeted:
        return ("outlet_not_targeted",)
    if any(earn(version.definition, version.audience, order) is not None for order, version in targeted):
        return ("excluded_by_stacking",)
    return ("slab_not_reached",)


@dataclass(frozen=True)
class StoredClaim:
    """A claim as kept between batches."""

    claim: SchemeClaimSubmitted
    """Its current submission: the latest by event time."""
    revision: int
    """Of its last ClaimAssessed (0: never assessed)."""
    claim_revision: int
    """The current submission's revision."""
    assessed: dict[str, Any] | None
    """The figures of its last assessment."""
