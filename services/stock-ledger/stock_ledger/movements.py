"""Which stock movements each trade event makes. Pure: no I/O.

Signs are from the distributor's point of view: goods in are positive.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import (
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
)

STOCK_EVENT_TYPES = frozenset(
    {
        "PrimaryInvoiced",
        "OrderCaptured",
        "OrderDelivered",
        "OrderCancelled",
        "ReturnRecorded",
        "StockAdjusted",
        "StockCounted",
    }
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


def movements_of(event: Envelope) -> list[Movement]:
    def lines(kind: str, signed: list[tuple[str, int]], order_id: str | None = None) -> list[Movement]:
        distributor_id: str = event.payload.distributor_id  # type: ignore[attr-defined]
        return [
            Movement(event.event_id, n, distributor_id, sku, event.occurred_at, kind, delta, order_id)
            for n, (sku, delta) in enumerate(signed)
        ]

    if isinstance(event, PrimaryInvoiced):
        return lines("primary", [(line.sku_id, line.quantity) for line in event.payload.lines])
    if isinstance(event, OrderCaptured):
        return lines("order", [(line.sku_id, -line.quantity) for line in event.payload.lines], event.payload.order_id)
    if isinstance(event, OrderDelivered):
        return lines(
            "delivery", [(line.sku_id, -line.quantity) for line in event.payload.lines], event.payload.order_id
        )
    if isinstance(event, ReturnRecorded):
        inbound = event.payload.direction == "from_retailer"
        return lines(
            "return_in" if inbound else "return_out",
            [(line.sku_id, line.quantity if inbound else -line.quantity) for line in event.payload.lines],
        )
    if isinstance(event, StockAdjusted):
        return lines("adjustment", [(line.sku_id, line.quantity_delta) for line in event.payload.lines])
    return []


def count_lines_of(event: Envelope) -> list[CountLine]:
    """A count's quantities per SKU (a SKU counted on two shelves is summed). Outlet counts (taken at a
    retailer) are not the distributor's stock and are ignored here."""
    if not isinstance(event, StockCounted) or event.payload.outlet_id is not None:
        return []
    quantities: dict[str, int] = defaultdict(int)
    for line in event.payload.lines:
        quantities[line.sku_id] += line.quantity
    p = event.payload
    return [
        CountLine(event.event_id, sku, p.count_id, p.distributor_id, p.counted_at, qty, p.purpose)
        for sku, qty in quantities.items()
    ]
