"""Retailer returns reverse scheme benefits: goods bought under a scheme and sent back earn nothing.

Rule. Returns are taken one by one in event-time order (`occurred_at`, then distributor and return id). A
return of N units of a SKU by an outlet reverses up to N of the units of that SKU on that outlet's granted
order lines of the scheme, newest order first (event time, then event id), among orders taken no later than
the return: a return cannot undo an order placed after it. Units already reversed by an earlier return are not
reversed twice; units returned beyond what the scheme granted reverse nothing more (they were bought outside
it). A line with k of its q units reversed keeps the benefit of its other units at the rate it was granted:
discount x (q - k) / q, rounded half-up to cents (so reversing every unit leaves exactly 0). Free goods are an
order's, not a line's: with K of its Q qualifying units reversed, an order keeps floor(free units x (Q - K) / Q)
whole free units, never a fraction of one more than its kept units pay for.

Reversal applies to what the budget granted (after allocate_budget), and the budget it frees is not granted
to other orders: a return must not change what a later order earned.

Why it is arrival-order independent. The result is a pure function of the scheme's granted benefits and the
set of returns, both rebuilt from stored events whenever either changes; so a return synced before the order
it undoes, or the same return delivered twice (one row per distributor and return id), gives the same
figures as the orderly sequence.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from scheme_engine.domain.money import round_money
from scheme_engine.domain.results import LineBenefit, SchemeBenefit, event_time_key
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import ReturnRecorded


@dataclass(frozen=True, slots=True)
class RetailerReturn:
    """Units of one SKU an outlet sent back to its distributor (one line of a ReturnRecorded)."""

    distributor_id: str
    return_id: str
    outlet_id: str
    sku_id: str
    units: int
    occurred_at: datetime

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError(f"return {self.return_id} of {self.sku_id}: negative units {self.units}")


LineKey = tuple[UUID, int]
"""(order event id, line index): one granted order line."""


def reversed_units(granted: Sequence[SchemeBenefit], returns: Iterable[RetailerReturn]) -> dict[LineKey, int]:
    """Units reversed per granted order line, by the rule in the module docstring."""
    lines: dict[tuple[str, str], list[tuple[SchemeBenefit, LineBenefit]]] = defaultdict(list)
    for benefit in sorted(granted, key=event_time_key, reverse=True):  # newest first
        for line in benefit.lines:
            lines[(benefit.outlet_id, line.sku_id)].append((benefit, line))
    taken: dict[LineKey, int] = defaultdict(int)
    in_order = sorted(returns, key=lambda r: (r.occurred_at, r.distributor_id, r.return_id, r.sku_id))
    for ret in in_order:
        left = ret.units
        for benefit, line in lines.get((ret.outlet_id, ret.sku_id), ()):
            if left == 0:
                break
            if benefit.occurred_at > ret.occurred_at:
                continue
            key = (benefit.order_event_id, line.line_index)
            take = min(left, line.quantity - taken[key])
            taken[key] += take
            left -= take
    return {key: units for key, units in taken.items() if units}


def reverse_returns(granted: Sequence[SchemeBenefit], returns: Iterable[RetailerReturn]) -> list[SchemeBenefit]:
    """The granted benefits as they stand after the returns (same order; untouched benefits unchanged)."""
    taken = reversed_units(granted, returns)
    if not taken:
        return list(granted)
    return [_kept(benefit, taken) for benefit in granted]


def _kept(benefit: SchemeBenefit, taken: dict[LineKey, int]) -> SchemeBenefit:
    reversed_here = {line.line_index: taken.get((benefit.order_event_id, line.line_index), 0) for line in benefit.lines}
    total = sum(reversed_here.values())
    if total == 0:
        return benefit
    lines = tuple(_kept_line(line, reversed_here[line.line_index]) for line in benefit.lines)
    qualifying = benefit.qualifying_units
    kept_units = qualifying - total
    return replace(
        benefit,
        qualifying_units=kept_units,
        qualifying_value=benefit.qualifying_value
        - sum((was.gross_value - now.gross_value for was, now in zip(benefit.lines, lines, strict=True)), Decimal(0)),
        lines=lines,
        free_goods=tuple(
            replace(
                goods,
                units=goods.units * kept_units // qualifying if qualifying else 0,
                earned_units=goods.earned_units * kept_units // qualifying if qualifying else 0,
            )
            for goods in benefit.free_goods
        ),
    )


def _kept_line(line: LineBenefit, units: int) -> LineBenefit:
    if units == 0:
        return line
    kept = line.quantity - units

    def share(amount: Decimal) -> Decimal:
        return round_money(amount * kept / line.quantity)

    return replace(
        line,
        quantity=kept,
        gross_value=share(line.gross_value),
        earned_discount=share(line.earned_discount),
        discount_value=share(line.discount_value),
    )


def retailer_returns(events: Sequence[Envelope]) -> list[ReturnRecorded]:
    """The returns that reverse benefits: from a retailer, at an outlet."""
    return [
        e
        for e in events
        if type(e) is ReturnRecorded and e.payload.direction == "from_retailer" and e.payload.outlet_id
    ]
