"""Every event type by name, and the one way to turn bytes into a typed event and back.

Both ways in (`parse_event`, `decode_event`) read any schema version this code knows and give the event in its
current shape (older versions are upcast); a newer version is a ValidationError of type
`unknown_schema_version`. The rule, and how to add a version, are in versions.py."""

from typing import Annotated, Any, get_args

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from sellthrough_contracts.envelope import Envelope, Upcast
from sellthrough_contracts.field import BeatPlanned, DayEnded, DayStarted, LocationChecked, OutletGeotagged
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
    RetailerInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
    VisitRecorded,
)
from sellthrough_contracts.versions import upcast

AnyEvent = Annotated[
    GeographyDefined
    | DistributorRegistered
    | OutletRegistered
    | SkuRegistered
    | RepRegistered
    | OrderCaptured
    | PrimaryInvoiced
    | RetailerInvoiced
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
    | VisitRecorded
    | BeatPlanned
    | DayStarted
    | DayEnded
    | OutletGeotagged
    | LocationChecked,
    Field(discriminator="event_type"),
]
"""Every event type; the one list to extend when adding one."""

EVENT_TYPES: dict[str, type[Envelope]] = {cls.type_name(): cls for cls in get_args(get_args(AnyEvent)[0])}

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type_names() -> list[str]:
    return sorted(EVENT_TYPES)


def upcast_document(data: Any) -> Any:
    """An event document of an older schema version brought to the current shape (versions.py); anything else, a
    current document included, unchanged. Done before validation, not in a model validator: a model with a
    "before" validator is validated from Python objects even when asked to validate JSON strictly, which would
    refuse every timestamp, UUID and decimal string at the HTTP edge."""
    if not isinstance(data, dict) or not isinstance(event_type := data.get("event_type"), str):
        return data
    event_class = EVENT_TYPES.get(event_type)
    if event_class is None or not issubclass(event_class, Upcast):
        return data
    return upcast(event_class, event_class.upcasters, data)


def parse_event(data: dict[str, Any]) -> Envelope:
    """Validate an event arriving from a client, upcast to the current schema version; unknown fields are refused
    (they are usually typos). A missing schema_version is taken as the current one.

    Raises pydantic.ValidationError."""
    return _ANY_EVENT.validate_python(upcast_document(data))


def decode_event(raw: bytes) -> Envelope:
    """Validate a Kafka record value as an event, upcast to the current schema version. Every change of fields is a
    new schema_version (versions.py), so a record of a known version has no field unknown to its model; unknown
    fields are still ignored rather than refused, as they were before versions were enforced.
    Raises pydantic.ValidationError."""
    try:
        # The common case, current records, straight from JSON; an older version fails here on its
        # schema_version (each upcast type pins its current one) and is upcast below.
        return _ANY_EVENT.validate_json(raw, extra="ignore")
    except ValidationError as error:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise error from None
        upcasted = upcast_document(document)
        if upcasted is document:
            raise
        return _ANY_EVENT.validate_python(upcasted, extra="ignore")


def encode_event(event: Envelope) -> bytes:
    """The wire form of an event: compact JSON, decimals as strings, timestamps in ISO 8601."""
    return orjson.dumps(event.model_dump(mode="json"))
