"""The fast reading of the hot event type at the HTTP edge: an OrderCaptured validated by msgspec Structs that
enforce the contract's rules, then built as the contract model without validating it a second time.

It only ever says yes when the contract would: a document it is not sure of (another type, a rule it does not
mirror exactly, anything it refuses) goes to the pydantic path (validation.parse), which accepts or rejects it and
words the errors. So the Structs may be stricter than the contract, never looser; tests/unit/
test_order_capture_edge_decoding.py checks both over generated valid and invalid orders (same verdict, equal
events, equal fingerprints)."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec
from pydantic import BaseModel

from sellthrough_contracts.common import ID_PATTERN, GeoPoint
from sellthrough_contracts.currency import brand_currency
from sellthrough_contracts.trade import OrderCaptured, OrderCapturedPayload, OrderLine

_IDS = re.compile("(?:" + ID_PATTERN.removeprefix("^").removesuffix("$") + r"\n)*\Z")
"""The Ids (common.ID_PATTERN) of an order, checked after decoding all at once: one match rather than one per id,
which was half the cost of decoding. Each id is followed by a newline, which no id holds (`_valid_ids` checks that
the pieces are the ids). `\\Z`, not `$`: Python's `$` also matches before a final newline, pydantic's does not."""
_AWARE = Annotated[datetime, msgspec.Meta(tz=True)]


class _GeoPoint(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None


class _OrderLine(msgspec.Struct, forbid_unknown_fields=True):
    sku_id: str
    quantity: Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
    unit_price: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,10}(?:\.[0-9]{1,4})?\Z")]
    """Money (>= 0, 14 digits of which 4 decimal places) as a plain decimal string, read by Decimal after: a JSON
    number, an exponent or trailing zeros beyond the fourth place are left to the contract model."""


class _OrderCapturedPayload(msgspec.Struct, forbid_unknown_fields=True):
    order_id: str
    outlet_id: str
    distributor_id: str
    rep_id: str
    lines: Annotated[list[_OrderLine], msgspec.Meta(min_length=1, max_length=500)]
    visit_id: str | None = None
    gps: _GeoPoint | None = None
    mock_location: bool = False
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")] | None = None
    """Common.Currency; absent is the brand's (the contract's default), filled in by _model."""


class _OrderCaptured(msgspec.Struct, forbid_unknown_fields=True):
    event_id: UUID
    event_type: str  # fast_order reads only documents whose event_type is OrderCaptured's
    occurred_at: _AWARE
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    actor: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    payload: _OrderCapturedPayload
    schema_version: Literal[3] = 3
    recorded_at: _AWARE | None = None
    key: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    causation_id: UUID | None = None


_DECODER = msgspec.json.Decoder(_OrderCaptured)
_ORDER_CAPTURED = OrderCaptured.type_name()
_CURRENT_VERSION = int(OrderCaptured.model_fields["schema_version"].default)
# The Struct pins the version it mirrors (`schema_version: Literal[3]`): a new version of the contract must come with
# a new Struct, or every order would silently take the slow path.
assert _CURRENT_VERSION == 3, "domain/edge.py mirrors OrderCaptured version 3"

_PLAIN_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")
"""RFC 3339 with at most microseconds: pydantic truncates finer fractions where msgspec rounds them, so those
(and any other spelling) are left to pydantic."""

_ENVELOPE_FIELDS = frozenset(OrderCaptured.model_fields)
_PAYLOAD_FIELDS = frozenset(OrderCapturedPayload.model_fields)
_GEO_FIELDS = frozenset(GeoPoint.model_fields)
_LINE_FIELDS = frozenset(OrderLine.model_fields)


def fast_order(raw: dict[str, Any], encoded: bytes) -> OrderCaptured | None:
    """`raw` (an upcast event document, `encoded` its JSON) as an OrderCaptured if it surely is a valid one, else
    None: the caller then validates it with the contract model."""
    if raw.get("event_type") != _ORDER_CAPTURED or raw.get("schema_version", _CURRENT_VERSION) != _CURRENT_VERSION:
        return None
    try:
        order = _DECODER.decode(encoded)
    except msgspec.ValidationError:
        return None
    if not _valid_ids(order.payload):
        return None
    if not _plain_timestamp(raw.get("occurred_at")) or (
        raw.get("recorded_at") is not None and not _plain_timestamp(raw["recorded_at"])
    ):
        return None
    return _model(order, raw)


def _valid_ids(p: _OrderCapturedPayload) -> bool:
    ids = [p.order_id, p.outlet_id, p.distributor_id, p.rep_id, *(line.sku_id for line in p.lines)]
    if p.visit_id is not None:
        ids.append(p.visit_id)
    joined = "\n".join(ids) + "\n"
    # As many newlines as ids: none of them holds one, so each piece the expression matches is one id.
    return joined.count("\n") == len(ids) and _IDS.match(joined) is not None


def _plain_timestamp(value: Any) -> bool:
    return isinstance(value, str) and _PLAIN_TIMESTAMP.match(value) is not None


M = TypeVar("M", bound=BaseModel)


def _trusted(cls: type[M], fields_set: set[str], values: dict[str, Any]) -> M:
    """What `cls.model_construct(_fields_set, **values)` makes when `values` holds every field, without its walk over
    the fields (aliases, defaults), which costs more than validating the order: it is a few assignments."""
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


_set = object.__setattr__
_new_line = OrderLine.__new__


def _lines(lines: list[_OrderLine]) -> list[OrderLine]:
    """`_trusted(OrderLine, ...)` of each line, written out: an order's lines are most of the models built per
    order, and the call and its arguments cost a third of building each."""
    built = []
    for line in lines:
        model = _new_line(OrderLine)
        _set(
            model,
            "__dict__",
            {"sku_id": line.sku_id, "quantity": line.quantity, "unit_price": Decimal(line.unit_price)},
        )
        _set(model, "__pydantic_fields_set__", set(_LINE_FIELDS))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        built.append(model)
    return built


for _cls in (OrderCaptured, OrderCapturedPayload, OrderLine, GeoPoint):
    # _trusted builds these classes only: no post-init hook, no extra fields kept, not a root model.
    assert not _cls.__pydantic_post_init__, _cls
    assert _cls.model_config.get("extra") == "forbid", _cls
    assert not _cls.__pydantic_root_model__, _cls


def _model(order: _OrderCaptured, raw: dict[str, Any]) -> OrderCaptured:
    """The contract model of a validated order, built without validating it again. The set fields are those the
    document held, as validation records them."""
    p = order.payload
    raw_payload: dict[str, Any] = raw["payload"]
    gps = None
    if p.gps is not None:
        gps = _trusted(
            GeoPoint,
            raw_payload["gps"].keys() & _GEO_FIELDS,
            {"lat": p.gps.lat, "lon": p.gps.lon, "accuracy_m": p.gps.accuracy_m},
        )
    lines = _lines(p.lines)
    payload = _trusted(
        OrderCapturedPayload,
        raw_payload.keys() & _PAYLOAD_FIELDS,
        {
            "order_id": p.order_id,
            "outlet_id": p.outlet_id,
            "distributor_id": p.distributor_id,
            "rep_id": p.rep_id,
            "visit_id": p.visit_id,
            "gps": gps,
            "mock_location": p.mock_location,
            "lines": lines,
            "currency": brand_currency() if p.currency is None else p.currency,
        },
    )
    return _trusted(
        OrderCaptured,
        raw.keys() & _ENVELOPE_FIELDS,
        {
            "event_id": order.event_id,
            "event_type": order.event_type,
            "schema_version": order.schema_version,
            "occurred_at": order.occurred_at,
            "recorded_at": order.recorded_at,
            "source": order.source,
            "actor": order.actor,
            "key": order.key,
            "causation_id": order.causation_id,
            "payload": payload,
        },
    )
