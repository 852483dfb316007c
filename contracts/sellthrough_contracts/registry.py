"""Every event type by name, and the one way to turn bytes into a typed event and back.

Both ways in (`parse_event`, `decode_event`) read any schema version this code knows and give the event in its
current shape (older versions are upcast); a newer version is a ValidationError of type
`unknown_schema_version`. The rule, and how to add a version, are in versions.py."""

from typing import Annotated, Any, get_args

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
from sellthrough_contracts.schemes import (
    ClaimAssessed,
    SchemeAmended,
    SchemeApplied,
    SchemeClaimSubmitted,
    SchemeEnded,
    SchemeLaunched,
)
from sellthrough_contracts.stock import StockAlertRaised, StockPositionChanged, StockVarianceRecorded
from sellthrough_contracts.trade import (
    OrderCancelled,
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
    VisitRecorded,
)

AnyEvent = Annotated[
    GeographyDefined
    | DistributorRegistered
    | OutletRegistered
    | SkuRegistered
    | RepRegistered
    | OrderCaptured
    | PrimaryInvoiced
    | StockCounted
    | OrderDelivered
    | OrderCancelled
    | ReturnRecorded
    | StockAdjusted
    | StockPositionChanged
    | StockVarianceRecorded
    | StockAlertRaised
    | SchemeLaunched
    | SchemeAmended
    | SchemeEnded
    | SchemeClaimSubmitted
    | SchemeApplied
    | ClaimAssessed
    | VisitRecorded,
    Field(discriminator="event_type"),
]
"""Every event type; the one list to extend when adding one."""

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["event_type"].default: cls for cls in get_args(get_args(AnyEvent)[0])
}

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type_names() -> list[str]:
    return sorted(EVENT_TYPES)


def parse_event(data: dict[str, Any]) -> Envelope:
    """Validate an event arriving from a client, upcast to the current schema version; unknown fields are refused
    (they are usually typos). A missing schema_version is taken as the current one.

    Raises pydantic.ValidationError."""
    return _ANY_EVENT.validate_python(data)


def decode_event(raw: bytes) -> Envelope:
    """Validate a Kafka record value as an event, upcast to the current schema version. Every change of fields is a
    new schema_version (versions.py), so a record of a known version has no field unknown to its model; unknown
    fields are still ignored rather than refused, as they were before versions were enforced.
    Raises pydantic.ValidationError."""
    return _ANY_EVENT.validate_json(raw, extra="ignore")


def encode_event(event: Envelope) -> bytes:
    """The wire form of an event: compact JSON, decimals as strings, timestamps in ISO 8601."""
    return orjson.dumps(event.model_dump(mode="json"))
