"""The order as the scheme rules see it: the captured lines plus the reference data targeting needs.

The engine does no look-ups of its own. The caller joins the order with its copy of the masters: the
outlet's channel and class (OutletRegistered), the region of the distributor on the order
(DistributorRegistered) and that region's zone (GeographyDefined), and each line's brand (SkuRegistered).
A value the caller does not know is None: it never matches a targeting dimension that names values, and a
line without a brand qualifies only through its SKU id.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sellthrough_contracts.trade import OrderCaptured


@dataclass(frozen=True, slots=True)
class OrderLineContext:
    sku_id: str
    quantity: int
    unit_price: Decimal
    brand: str | None = None

    @property
    def gross_value(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class OutletProfile:
    """Where an outlet sits and what kind it is, as reference data said when the order is evaluated."""

    zone_id: str | None = None
    region_id: str | None = None
    channel: str | None = None
    outlet_class: str | None = None


@dataclass(frozen=True, slots=True)
class OrderContext:
    event_id: UUID
    order_id: str
    occurred_at: datetime
    outlet_id: str
    distributor_id: str
    lines: tuple[OrderLineContext, ...]
    outlet: OutletProfile = OutletProfile()

    def __post_init__(self) -> None:
        # Validity windows are aware datetimes; a naive time would fail to compare deep inside a rule.
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must carry a time zone")

    @classmethod
    def from_order_captured(
        cls, event: OrderCaptured, outlet: OutletProfile, brand_of_sku: Mapping[str, str]
    ) -> "OrderContext":
        payload = event.payload
        return cls(
            event_id=event.event_id,
            order_id=payload.order_id,
            occurred_at=event.occurred_at,
            outlet_id=payload.outlet_id,
            distributor_id=payload.distributor_id,
            lines=tuple(
                OrderLineContext(line.sku_id, line.quantity, line.unit_price, brand_of_sku.get(line.sku_id))
                for line in payload.lines
            ),
            outlet=outlet,
        )
