"""Which stock movements each trade event makes. Pure: no I/O.

Signs are from the distributor's point of view: goods in are positive.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.trade import (
    OrderCancelled,
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    RetailerInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
)


@dataclass(frozen=True)
class Movement:
    event_id: UUID
    line_no: int
    distributor_id: str
    sku_id: str
    occurred_at: datetime
    kind: str
    delta: int
    order_id: str | None = None


@dataclass(frozen=True)
class CountLine:
    event_id: UUID
    sku_id: str
    count_id: str
    distributor_id: str
    counted_at: datetime
    quantity: int
    purpose: str


def _lines(event: Any, kind: str, signed: list[tuple[str, int]], order_id: str | None = None) -> list[Movement]:
    distributor_id: str = event.payload.distributor_id
    return [
        Movement(event.event_id, n, distributor_id, sku, event.occurred_at, kind, delta, order_id)
        for n, (sku, delta) in enumerate(signed)
    ]


def _invoiced(event: PrimaryInvoiced) -> list[Movement]:
    return _lines(event, "primary", [(line.sku_id, line.quantity) for line in event.payload.lines])


def _ordered(event: OrderCaptured) -> list[Movement]:
    signed = [(line.sku_id, -line.quantity) for line in event.payload.lines]
    return _lines(event, "order", signed, event.payload.order_id)


def _delivered(event: OrderDelivered) -> list[Movement]:
    signed = [(line.sku_id, -line.quantity) for line in event.payload.lines]
    return _lines(event, "delivery", signed, event.payload.order_id)


def _retailer_invoiced(event: RetailerInvoiced) -> list[Movement]:
    """Goods billed to a retailer left the distributor: a delivery. With an order_id it is that order's delivery
    (it replaces the order's own movement, as an OrderDelivered does, whichever arrives first); without one it is
    a sale no order announced, and moves stock once, here."""
    signed = [(line.sku_id, -line.quantity) for line in event.payload.lines]
    return _lines(event, "delivery", signed, event.payload.order_id)


def _returned(event: ReturnRecorded) -> list[Movement]:
    inbound = event.payload.direction == "from_retailer"
    return _lines(
        event,
        "return_in" if inbound else "return_out",
        [(line.sku_id, line.quantity if inbound else -line.quantity) for line in event.payload.lines],
    )


def _adjusted(event: StockAdjusted) -> list[Movement]:
    return _lines(event, "adjustment", [(line.sku_id, line.quantity_delta) for line in event.payload.lines])


_MOVES: Mapping[type[Envelope], Callable[[Any], list[Movement]]] = {
    PrimaryInvoiced: _invoiced,
    OrderCaptured: _ordered,
    OrderDelivered: _delivered,
    RetailerInvoiced: _retailer_invoiced,
    ReturnRecorded: _returned,
    StockAdjusted: _adjusted,
}
"""The events that move stock, by class: each to its movements."""

SETTLING = (OrderDelivered, OrderCancelled)
"""Events that settle an order: a delivery (the goods left) or a cancellation (they never will). A
RetailerInvoiced settles its order too when it names one (settled_order)."""


def settled_order(event: Envelope) -> tuple[str, str, bool, bool] | None:
    """(distributor, order, delivered, cancelled) when this event settles an order, else None."""
    if isinstance(event, SETTLING):
        p = event.payload
        return p.distributor_id, p.order_id, type(event) is OrderDelivered, type(event) is OrderCancelled
    if type(event) is RetailerInvoiced and event.payload.order_id is not None:
        return event.payload.distributor_id, event.payload.order_id, True, False
    return None


STOCK_EVENT_CLASSES: tuple[type[Envelope], ...] = (*_MOVES, OrderCancelled, StockCounted)
STOCK_EVENT_TYPES = type_names(STOCK_EVENT_CLASSES)


def movements_of(event: Envelope) -> list[Movement]:
    move = _MOVES.get(type(event))
    return move(event) if move is not None else []


def count_lines_of(event: Envelope) -> list[CountLine]:
    """A count's quantities per SKU (a SKU counted on two shelves is summed). Outlet counts (taken at a
    retailer) are not the distributor's stock and are ignored here."""
    if type(event) is not StockCounted or event.payload.outlet_id is not None:
        return []
    quantities: dict[str, int] = defaultdict(int)
    for line in event.payload.lines:
        quantities[line.sku_id] += line.quantity
    p = event.payload
    return [
        CountLine(event.event_id, sku, p.count_id, p.distributor_id, p.counted_at, qty, p.purpose)
        for sku, qty in quantities.items()
    ]
