"""What the client sent, reduced to a fingerprint, and the wire form of an accepted event.

A retry is recognised by its fingerprint, so two spellings of the same content must fingerprint alike:
decimals are written in their shortest form ("12.50", "12.5000" and 12.5 are 12.5). Timestamps keep their
offset: the same instant written in another zone is another device clock reading, not a retry."""

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from pydantic import AwareDatetime, BaseModel, TypeAdapter

from order_capture.domain.business_keys import BusinessKey, business_key
from order_capture.domain.fields import fields_holding
from sellthrough_contracts import Envelope
from sellthrough_contracts.common import GeoPoint
from sellthrough_contracts.currency import brand_currency
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_contracts.trade import OrderCaptured, OrderCapturedPayload, OrderLine, PrimaryInvoiced

_SERVER_FIELDS = ("recorded_at", "key")
"""Envelope fields the server sets on acceptance: not part of what the client sent."""
_DECIMALS = (Decimal,)


class Accepted(NamedTuple):
    """An event as the server accepts it, from one serialisation of the event: the fingerprint of what the client
    sent (`content_hash(event)`) and the wire form of the stamped event (`encode_event(event.stamped(at))`)."""

    event: Envelope
    content_hash: bytes
    key: str
    """The Kafka partition key the stamped event carries."""
    value: bytes
    business_key: BusinessKey | None
    """The fact it records (business_keys.py): counted once, whatever its event_id."""
    body_hash: bytes
    """The fingerprint without the event_id: equal for the same fact posted again under a new event_id."""


def content_hash(event: Envelope) -> bytes:
    """Fingerprint of what the client sent, to tell an honest retry from a reused event_id."""
    dumped = event.model_dump(mode="json", exclude=set(_SERVER_FIELDS))
    return _with_event_id(event, _body_hash(event, dumped))


def legacy_content_hash(event: Envelope) -> bytes:
    """The fingerprint as idempotency records written before decimals were canonicalised hold it: a retry of
    such an event, sent exactly as before, is still a duplicate."""
    return _fingerprint(event.model_dump(mode="json", exclude=set(_SERVER_FIELDS)))


def _order_v2(dumped: dict[str, Any]) -> dict[str, Any] | None:
    """An OrderCaptured as version 2 wrote it, when it says nothing version 2 could not (the brand's currency)."""
    payload = dict(dumped["payload"])
    if payload.pop("currency", None) != brand_currency():
        return None
    return {**dumped, "schema_version": 2, "payload": payload}


def _order_v1(dumped: dict[str, Any]) -> dict[str, Any] | None:
    """An OrderCaptured as version 1 wrote it, when it says nothing version 1 could not (no mocked position, the
    brand's currency)."""
    v2 = _order_v2(dumped)
    if v2 is None:
        return None
    payload = dict(v2["payload"])
    if payload.pop("mock_location", False):
        return None
    return {**v2, "schema_version": 1, "payload": payload}


def _invoice_v1(dumped: dict[str, Any]) -> dict[str, Any] | None:
    """A PrimaryInvoiced as version 1 wrote it, when it says nothing version 1 could not (the brand's currency, no
    line's tax split)."""
    payload = dict(dumped["payload"])
    if payload.pop("currency", None) != brand_currency():
        return None
    lines = []
    for line in payload["lines"]:
        line = dict(line)
        if line.pop("taxable_value", None) is not None or line.pop("tax", None) is not None:
            return None
        lines.append(line)
    return {**dumped, "schema_version": 1, "payload": {**payload, "lines": lines}}


def _sku_v2(dumped: dict[str, Any]) -> dict[str, Any] | None:
    """A SkuRegistered as version 2 wrote it, when it says nothing version 2 could not."""
    payload = dict(dumped["payload"])
    if payload.pop("currency", None) != brand_currency():
        return None
    if any(payload.pop(name, None) is not None for name in ("hsn_code", "gst_rate", "units_per_case")):
        return None
    return {**dumped, "schema_version": 2, "payload": payload}


_EARLIER_FORMS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any] | None], ...]] = {
    OrderCaptured.type_name(): (_order_v2, _order_v1),
    PrimaryInvoiced.type_name(): (_invoice_v1,),
    SkuRegistered.type_name(): (_sku_v2,),
}
"""Event types past version 1 whose earlier version a phone may still retry: the accepted record holds the
fingerprint of that version's document, and the retry arrives upcast."""


def earlier_version_hashes(event: Envelope) -> set[bytes]:
    """Fingerprints the same content had when accepted under an earlier schema version: a retry of an event accepted
    before an upgrade is still a duplicate, not a reused id."""
    downcasts = _EARLIER_FORMS.get(event.event_type, ())
    if not downcasts:
        return set()
    dumped = event.model_dump(mode="json", exclude=set(_SERVER_FIELDS))
    hashes: set[bytes] = set()
    for downcast in downcasts:
        earlier = downcast(dumped)
        if earlier is not None:
            hashes |= {_with_event_id(event, _body_hash(event, dict(earlier))), _fingerprint(earlier)}
    return hashes


def accepted_form(event: Envelope, recorded_at: datetime) -> Accepted:
    """Fingerprint and wire form from a single `model_dump`, instead of a dump for the fingerprint, a stamped copy
    and a dump of the copy. The server-set fields are filled in the dump as `stamped` fills them in the model;
    orjson over model_dump(mode="json") is `encode_event` (a unit test holds the two together). An OrderCaptured,
    the hot event type, is dumped by `order_document` instead of pydantic's serializer."""
    if type(event) is OrderCaptured:
        document = order_document(event)
        canonical = dict(document)
        del canonical["recorded_at"], canonical["key"], canonical["event_id"]  # _SERVER_FIELDS, and the id
        canonical["payload"] = {**document["payload"], "lines": _canonical_lines(event)}
        body_hash = _fingerprint(canonical)
    else:
        document = event.model_dump(mode="json")
        canonical = dict(document)
        del canonical["recorded_at"], canonical["key"]  # _SERVER_FIELDS
        body_hash = _body_hash(event, canonical)
    key = event.partition_key()
    document["recorded_at"] = json_datetime(recorded_at)
    document["key"] = key
    fact = business_key(event.event_type, document["payload"])
    return Accepted(event, _with_event_id(event, body_hash), key, orjson.dumps(document), fact, body_hash)


def order_document(event: OrderCaptured) -> dict[str, Any]:
    """`event.model_dump(mode="json")`, field for field and in the same order, written out by hand: pydantic's
    serializer walking the four models of an order cost half of its fingerprint and wire form (~10 us an order
    against ~3). tests/unit/test_order_capture_order_document.py holds the two equal, byte for byte once
    encoded, over generated orders with every optional field present and absent; `_ORDER_FIELDS` below stops the
    import if the contract gains or loses a field."""
    p = event.payload
    gps = p.gps
    return {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": _json_time(event.occurred_at),
        "recorded_at": None if event.recorded_at is None else _json_time(event.recorded_at),
        "source": event.source,
        "actor": event.actor,
        "key": event.key,
        "causation_id": None if event.causation_id is None else str(event.causation_id),
        "payload": {
            "order_id": p.order_id,
            "outlet_id": p.outlet_id,
            "distributor_id": p.distributor_id,
            "rep_id": p.rep_id,
            "visit_id": p.visit_id,
            "gps": None if gps is None else {"lat": gps.lat, "lon": gps.lon, "accuracy_m": gps.accuracy_m},
            "mock_location": p.mock_location,
            # A JSON-mode dump writes a decimal as str(value).
            "lines": [
                {"sku_id": line.sku_id, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                for line in p.lines
            ],
            "currency": p.currency,
        },
    }


def _canonical_lines(event: OrderCaptured) -> list[dict[str, Any]]:
    """The lines of `_canonical_order`, from the model's decimals rather than by reading the dump's back."""
    return [
        {"sku_id": line.sku_id, "quantity": line.quantity, "unit_price": _shortest(line.unit_price)}
        for line in event.payload.lines
    ]


_ORDER_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    OrderCaptured: (
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "recorded_at",
        "source",
        "actor",
        "key",
        "causation_id",
        "payload",
    ),
    OrderCapturedPayload: (
        "order_id",
        "outlet_id",
        "distributor_id",
        "rep_id",
        "visit_id",
        "gps",
        "mock_location",
        "lines",
        "currency",
    ),
    OrderLine: ("sku_id", "quantity", "unit_price"),
    GeoPoint: ("lat", "lon", "accuracy_m"),
}
for _model, _fields in _ORDER_FIELDS.items():
    # order_document writes these fields in this order: a contract change must come with a change there.
    assert tuple(_model.model_fields) == _fields, (_model, tuple(_model.model_fields))
    assert not _model.model_computed_fields, _model
    assert not _model.__pydantic_decorators__.field_serializers, _model
    assert not _model.__pydantic_decorators__.model_serializers, _model


def _body_hash(event: Envelope, dumped: dict[str, Any]) -> bytes:
    """Fingerprint of the client's fields but the event_id: the same for one order posted under two ids.
    `dumped` is the caller's own copy of the dump: its event_id is taken out."""
    canonical = _canonical(event, dumped)
    del canonical["event_id"]
    return _fingerprint(canonical)


def _with_event_id(event: Envelope, body_hash: bytes) -> bytes:
    return hashlib.sha256(event.event_id.bytes + body_hash).digest()


_decimal_fields: dict[type[BaseModel], tuple[str, ...]] = {}
"""fields_holding(model, Decimal) by model, looked up without hashing the arguments' tuple: once per model of
every event."""


def _canonical(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    """`dumped` (the model's JSON-mode dump) with every decimal in its shortest form. Copies only the
    containers on the way to a decimal; the dump itself is left as it is (it becomes the wire form)."""
    if type(model) is OrderCaptured:
        return _canonical_order(dumped)
    return _canonical_walk(model, dumped)


def _canonical_walk(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    """`_canonical` of any model: the decimal fields found from its class, each decimal read from the model."""
    names = _decimal_fields.get(type(model))
    if names is None:
        names = _decimal_fields[type(model)] = fields_holding(type(model), _DECIMALS)
    if not names:
        return dumped
    canonical = dict(dumped)
    for name in names:
        if name in dumped:  # an earlier version's form (earlier_version_hashes) lacks the fields added since
            canonical[name] = _canonical_value(getattr(model, name), dumped[name])
    return canonical


def _canonical_order(dumped: dict[str, Any]) -> dict[str, Any]:
    """`_canonical` of an OrderCaptured, whose only decimals are its lines' prices, from the dump alone: a JSON-mode
    dump writes a decimal as str(value), which Decimal reads back as the same value. The generic walk, which reads
    each decimal from the model, cost more than the rest of the fingerprint (a unit test holds the two together)."""
    payload = dumped["payload"]
    lines = [{**line, "unit_price": _shortest(Decimal(line["unit_price"]))} for line in payload["lines"]]
    return {**dumped, "payload": {**payload, "lines": lines}}


def _canonical_value(value: Any, dumped: Any) -> Any:
    if isinstance(value, Decimal):
        return _shortest(value)
    if isinstance(value, BaseModel):
        return _canonical_walk(value, dumped)
    if isinstance(value, list | tuple):
        return [_canonical_value(item, dumped_item) for item, dumped_item in zip(value, dumped, strict=True)]
    return dumped


def _shortest(value: Decimal) -> str:
    # normalize() drops trailing zeros (12.50 -> 12.5, 120 -> 1.2E+2: any spelling of a value gives the same
    # string); every zero is written 0, whatever its sign or exponent.
    return str(value.normalize()) if value else "0"


def _fingerprint(canonical: dict[str, Any]) -> bytes:
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).digest()


_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def _json_time(moment: datetime) -> Any:
    """A timestamp field of an event as its model_dump(mode="json") writes it (not cached: each order has its
    own)."""
    return _DATETIME.dump_python(moment, mode="json")


def json_datetime(moment: datetime) -> Any:
    """A timestamp as the envelope's model_dump(mode="json") writes it."""
    return _json_instant(moment, moment.utcoffset())


@functools.lru_cache(maxsize=4)
def _json_instant(moment: datetime, offset: timedelta | None) -> Any:
    # Cached because a batch stamps every event alike. Equal datetimes with other offsets are written
    # differently, hence the offset in the key.
    return _DATETIME.dump_python(moment, mode="json")
