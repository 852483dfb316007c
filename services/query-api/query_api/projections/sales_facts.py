"""What the sales projection reads of each event: its facts as rows, for the live path (sales.py) and the bulk
path (sales_bulk.py) alike."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from query_api.projections.base import LeanSteps, with_lean
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, OrderDelivered, ReturnRecorded


def business_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _per_sku(key: tuple[Any, ...], lines: Iterable[tuple[str, Sequence[int | Decimal]]]) -> list[tuple[Any, ...]]:
    """An event's lines summed per SKU (one SKU may be listed twice), as rows: `key`, the SKU, then the sums."""
    totals: dict[str, list[int | Decimal]] = {}
    for sku_id, figures in lines:
        cell = totals.setdefault(sku_id, [0] * len(figures))
        for i, amount in enumerate(figures):
            cell[i] += amount
    return [(*key, sku_id, *figures) for sku_id, figures in totals.items()]


@dataclass
class SalesFacts:
    """A batch's sales facts as collect_sales collects them: rows in the column order of their tables (migration
    0008); lines one row per (document, event id, SKU) with its figures."""

    zone: ZoneInfo
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    order_skus: list[tuple[Any, ...]] = field(default_factory=list)
    cancellations: list[tuple[Any, ...]] = field(default_factory=list)
    deliveries: list[tuple[Any, ...]] = field(default_factory=list)
    delivery_lines: list[tuple[Any, ...]] = field(default_factory=list)
    returns: list[tuple[Any, ...]] = field(default_factory=list)
    return_lines: list[tuple[Any, ...]] = field(default_factory=list)


def _order(event: OrderCaptured, facts: SalesFacts) -> None:
    p = event.payload
    gps = p.gps
    facts.orders.append(
        (
            p.distributor_id,
            p.order_id,
            event.event_id,
            p.outlet_id,
            p.rep_id,
            business_day(event.occurred_at, facts.zone),
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
            p.visit_id,
            gps.lat if gps else None,
            gps.lon if gps else None,
            gps.accuracy_m if gps else None,
        )
    )
    lines = p.lines
    if len({line.sku_id for line in lines}) == len(lines):  # the common case: each SKU listed once
        d, o, e = p.distributor_id, p.order_id, event.event_id
        facts.order_skus.extend((d, o, e, ln.sku_id, ln.quantity, ln.unit_price * ln.quantity, 1) for ln in lines)
    else:
        key = (p.distributor_id, p.order_id, event.event_id)
        facts.order_skus.extend(
            _per_sku(key, ((line.sku_id, (line.quantity, line.unit_price * line.quantity, 1)) for line in lines))
        )


def _cancellation(event: OrderCancelled, facts: SalesFacts) -> None:
    c = event.payload
    facts.cancellations.append(
        (
            c.distributor_id,
            c.order_id,
            event.event_id,
            c.outlet_id,
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
            c.reason,
        )
    )


def _delivery(event: OrderDelivered, facts: SalesFacts) -> None:
    d = event.payload
    facts.deliveries.append(
        (
            d.distributor_id,
            d.delivery_id,
            event.event_id,
            d.order_id,
            d.outlet_id,
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
        )
    )
    key = (d.distributor_id, d.delivery_id, event.event_id)
    facts.delivery_lines.extend(_per_sku(key, ((line.sku_id, (line.quantity,)) for line in d.lines)))


def _return(event: ReturnRecorded, facts: SalesFacts) -> None:
    r = event.payload
    facts.returns.append(
        (
            r.distributor_id,
            r.return_id,
            event.event_id,
            r.outlet_id,
            r.direction,
            r.reason,
            business_day(event.occurred_at, facts.zone),
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
        )
    )
    key = (r.distributor_id, r.return_id, event.event_id)
    facts.return_lines.extend(_per_sku(key, ((line.sku_id, (line.quantity,)) for line in r.lines)))


CONSUMES = (OrderCaptured, OrderCancelled, OrderDelivered, ReturnRecorded)
_STEPS: LeanSteps[SalesFacts] = with_lean(dict(zip(CONSUMES, (_order, _cancellation, _delivery, _return), strict=True)))


def collect_sales(events: Sequence[Envelope], zone: ZoneInfo) -> tuple[SalesFacts, list[Envelope]]:
    """The sales facts of these events, and the events that have some (the others are skipped)."""
    facts = SalesFacts(zone)
    fed: list[Envelope] = []
    for event in events:
        step = _STEPS.get(type(event))
        if step is not None:
            step(event, facts)
            fed.append(event)
    return facts, fed
