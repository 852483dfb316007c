"""Every event type by name, and the one way to turn bytes into a typed event and back."""

from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter

from sellthrough_contracts.envelope import Envelope
from sellthrough_contracts.reference import (
    DistributorRegistered,
    GeographyDefined,
    OutletRegistered,
    RepRegistered,
    SkuRegistered,
)
from sellthrough_contracts.trade import OrderCaptured, PrimaryInvoiced, StockCounted

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        GeographyDefined,
        DistributorRegistered,
        OutletRegistered,
        SkuRegistered,
        RepRegistered,
        OrderCaptured,
        PrimaryInvoiced,
        StockCounted,
    )
}

AnyEvent = Annotated[
    GeographyDefined
    | DistributorRegistered
    | OutletRegistered
    | SkuRegistered
    | RepRegistered
    | OrderCaptured
    | PrimaryInvoiced
    | StockCounted,
    Field(discriminator="event_type"),
]

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type_names() -> list[str]:
    return sorted(EVENT_TYPES)


def parse_event(data: dict[str, Any]) -> Envelope:
    """Validate a decoded JSON object as an event; raises pydantic.ValidationError."""
    return _ANY_EVENT.validate_python(data)


def decode_event(raw: bytes) -> Envelope:
    """Validate a JSON document (a Kafka record value) as an event; raises pydantic.ValidationError."""
    return _ANY_EVENT.validate_json(raw)


def encode_event(event: Envelope) -> bytes:
    """The wire form of an event: compact JSON, decimals as strings, timestamps in ISO 8601."""
    return orjson.dumps(event.model_dump(mode="json"))
