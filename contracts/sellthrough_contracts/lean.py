"""Lean readings of the hot trade events, for consumers of trusted topics: msgspec structs holding only the fields
a projection needs, decoded in ~2 us where the pydantic model (trade.py) takes ~11 us.

Trusted: what is on the trade topic was validated in full at the HTTP edge (order-capture) before it was written.
A lean struct therefore checks types and the few bounds a figure depends on, not every rule of its contract
(identifier patterns, name lengths, unknown fields). Anything it cannot read (another type, an older or newer
schema version, a missing or mistyped field; a record without schema_version is read as current, as the
contract reads it) is for the caller to decode with the full contract, which upcasts
or reports what is wrong (`decode_lean` returns None then). tests/contract/test_lean_contracts.py keeps every
field here in step with its contract class.

Each struct has the attributes of its contract class that it keeps, under the same names and shapes
(`event.payload.lines[0].quantity`), so code written against the contract reads either; `LEAN_CONTRACTS` maps
each to the contract class it stands for.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from sellthrough_contracts.envelope import Envelope
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, OrderDelivered, ReturnRecorded

AwareDatetime = Annotated[datetime, Meta(tz=True)]
Quantity = Annotated[int, Meta(gt=0, le=1_000_000)]


class LeanStruct(msgspec.Struct, frozen=True):
    """A part of a lean event."""


class LeanEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type"):
    """The envelope fields projections read. `event_type` is the tag msgspec dispatches on (a class attribute)."""

    event_type: ClassVar[str]
    event_id: UUID
    occurred_at: AwareDatetime
    source: str
    actor: str
    recorded_at: AwareDatetime | None = None


class GeoPoint(LeanStruct, frozen=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: float | None = None


class OrderLine(LeanStruct, frozen=True):
    sku_id: str
    quantity: Quantity
    unit_price: Decimal  # msgspec bounds no Decimal: the edge checked it (Money)


class OrderCapturedPayload(LeanStruct, frozen=True):
    order_id: str
    outlet_id: str
    distributor_id: str
    rep_id: str
    lines: Annotated[list[OrderLine], Meta(min_length=1, max_length=500)]
    visit_id: str | None = None
    gps: GeoPoint | None = None


class LeanOrderCaptured(LeanEvent, frozen=True, tag="OrderCaptured"):
    event_type: ClassVar[str] = "OrderCaptured"
    payload: OrderCapturedPayload
    schema_version: Literal[3] = 3


class OrderCancelledPayload(LeanStruct, frozen=True):
    order_id: str
    outlet_id: str
    distributor_id: str
    reason: str


class LeanOrderCancelled(LeanEvent, frozen=True, tag="OrderCancelled"):
    event_type: ClassVar[str] = "OrderCancelled"
    payload: OrderCancelledPayload
    schema_version: Literal[1] = 1


class DeliveryLine(LeanStruct, frozen=True):
    sku_id: str
    quantity: Annotated[int, Meta(ge=0, le=1_000_000)]


class OrderDeliveredPayload(LeanStruct, frozen=True):
    delivery_id: str
    order_id: str
    outlet_id: str
    distributor_id: str
    lines: Annotated[list[DeliveryLine], Meta(min_length=1, max_length=500)]


class LeanOrderDelivered(LeanEvent, frozen=True, tag="OrderDelivered"):
    event_type: ClassVar[str] = "OrderDelivered"
    payload: OrderDeliveredPayload
    schema_version: Literal[1] = 1


class ReturnLine(LeanStruct, frozen=True):
    sku_id: str
    quantity: Quantity


class ReturnRecordedPayload(LeanStruct, frozen=True):
    return_id: str
    distributor_id: str
    direction: Literal["from_retailer", "to_company"]
    reason: Literal["damaged", "expired", "unsold"]
    lines: Annotated[list[ReturnLine], Meta(min_length=1, max_length=500)]
    outlet_id: str | None = None


class LeanReturnRecorded(LeanEvent, frozen=True, tag="ReturnRecorded"):
    event_type: ClassVar[str] = "ReturnRecorded"
    payload: ReturnRecordedPayload
    schema_version: Literal[1] = 1


LEAN_CONTRACTS: dict[type[LeanEvent], type[Envelope]] = {
    LeanOrderCaptured: OrderCaptured,
    LeanOrderCancelled: OrderCancelled,
    LeanOrderDelivered: OrderDelivered,
    LeanReturnRecorded: ReturnRecorded,
}
"""Each lean struct -> the contract class it is a reading of."""

_DECODER = msgspec.json.Decoder(LeanOrderCaptured | LeanOrderCancelled | LeanOrderDelivered | LeanReturnRecorded)


def decode_lean(raw: bytes) -> LeanEvent | None:
    """The lean reading of an encoded event, or None when it is not one of the lean types at its current schema
    version with every kept field readable: the caller then decodes it with the full contract."""
    try:
        event: LeanEvent = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return event
