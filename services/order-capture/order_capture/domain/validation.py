"""Per-event validation: contract, clock, and references to known masters. Pure: no I/O."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from order_capture.domain.clock import Window, payload_time_errors
from order_capture.domain.edge import fast_order
from order_capture.domain.text import control_character_errors
from sellthrough_contracts import AnyEvent, Envelope, upcast_document
from sellthrough_contracts.topics import REFERENCE
from sellthrough_contracts.versions import UNKNOWN_SCHEMA_VERSION


class Reason(StrEnum):
    """Why one event of a batch was rejected. Stable strings: clients branch on them."""

    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID_FIELDS = "invalid_fields"
    OCCURRED_IN_FUTURE = "occurred_in_future"
    OCCURRED_TOO_EARLY = "occurred_too_early"
    UNKNOWN_OUTLET = "unknown_outlet"
    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_REP = "unknown_rep"
    UNKNOWN_DISTRIBUTOR = "unknown_distributor"
    OUTLET_NOT_SERVED_BY_DISTRIBUTOR = "outlet_not_served_by_distributor"
    EVENT_ID_REUSED = "event_id_reused"
    ORDER_ID_REUSED = "order_id_reused"
    BUSINESS_ID_REUSED = "business_id_reused"
    OUTSIDE_TERRITORY = "outside_territory"
    NOT_OWN_ORDER = "not_own_order"
    UNKNOWN_ORDER = "unknown_order"
    DISTRIBUTOR_NOT_BOUND = "distributor_not_bound"
    NO_ORDER_REASON_REQUIRED = "no_order_reason_required"
    UNKNOWN_NO_ORDER_REASON = "unknown_no_order_reason"
    OFF_SITE = "off_site"
    NO_UNITS_PER_CASE = "no_units_per_case"
    TAX_NOT_AT_GST_RATE = "tax_not_at_gst_rate"


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str
    event_id: UUID | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class KnownMasters:
    """The masters a batch refers to, as this service knows them (ids not found are simply absent)."""

    outlet_distributor: Mapping[str, str]
    skus: frozenset[str]
    reps: frozenset[str]
    distributors: frozenset[str]
    outlet_beat: Mapping[str, str | None] = field(default_factory=dict)
    sku_gst_rates: Mapping[str, Decimal] = field(default_factory=dict)
    """The GST rate (percent) of each SKU named that has one (formats.check_gst)."""


@dataclass(frozen=True)
class References:
    outlets: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    reps: set[str] = field(default_factory=set)
    distributors: set[str] = field(default_factory=set)


_EVENTS: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse(raw: Any, window: Window) -> Envelope | Rejection:
    """Contract, text and clock checks for one event of a batch.

    Validated strictly, from JSON: a quantity of "12" or a flag of "true" is refused rather than coerced (a
    client sending them has a bug that coercion would hide); timestamps, dates, UUIDs and decimals are JSON
    strings as always, and decimals may also be JSON numbers."""
    if not isinstance(raw, dict):
        return Rejection(Reason.NOT_AN_OBJECT, "each event must be a JSON object")
    raw = upcast_document(raw)  # an older schema_version to the current shape
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError:
        # orjson writes at most 255 levels of nesting (it reads 1,024); no event comes near either.
        return _invalid([{"field": "", "message": "the event is nested too deeply"}], event_id_of(raw))
    errors = control_character_errors(raw, encoded)
    # The hot type is read by msgspec when it surely passes (edge.py); everything else, and every error, by the
    # contract model, which words the errors.
    fast = None if errors else fast_order(raw, encoded)
    try:
        event = fast if fast is not None else _EVENTS.validate_json(encoded, strict=True)
    except ValidationError as error:
        if any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in error.errors()):
            return Rejection(
                Reason.UNKNOWN_EVENT_TYPE, f"unknown event_type {raw.get('event_type')!r}", event_id_of(raw)
            )
        if unknown := [e for e in error.errors() if e["type"] == UNKNOWN_SCHEMA_VERSION]:
            detail = f"{raw.get('event_type')}: {unknown[0]['msg']}"
            return Rejection(Reason.UNKNOWN_SCHEMA_VERSION, detail, event_id_of(raw))
        errors += [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in error.errors(include_url=False)
        ]
        return _invalid(errors, event_id_of(raw))
    errors += payload_time_errors(event)
    if errors:
        return _invalid(errors, event.event_id)
    if reason := window.too_early(event.occurred_at):
        return Rejection(Reason.OCCURRED_TOO_EARLY, reason, event.event_id)
    if reason := window.too_late(event.occurred_at):
        return Rejection(Reason.OCCURRED_IN_FUTURE, reason, event.event_id)
    return event


def _invalid(errors: list[dict[str, str]], event_id: UUID | None) -> Rejection:
    # One error per field: a control character in a name also fails the name's pattern; say it once.
    by_field: dict[str, dict[str, str]] = {}
    for error in errors:
        by_field.setdefault(error["field"], error)
    unique = list(by_field.values())
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in unique)
    return Rejection(Reason.INVALID_FIELDS, detail, event_id, unique)


def _named_masters(event: Envelope) -> tuple[str | None, str | None, str | None, list[str]]:
    """(distributor, outlet, rep, SKUs) an event's payload names, whatever its type."""
    payload = getattr(event, "payload", None)
    lines = getattr(payload, "lines", None) or []
    return (
        getattr(payload, "distributor_id", None),
        getattr(payload, "outlet_id", None),
        getattr(payload, "rep_id", None),
        [line.sku_id for line in lines if hasattr(line, "sku_id")],
    )


def _planned_outlets(event: Envelope) -> list[str]:
    """The outlets a beat plan lists (BeatPlanned), which must be registered like any outlet named."""
    payload = getattr(event, "payload", None)
    # Asked of the class first: getattr with a default on a model without the field raises and catches an
    # AttributeError inside pydantic's __getattr__, twice per order of every batch.
    if not isinstance(payload, BaseModel) or "outlet_ids" not in type(payload).model_fields:
        return []
    return list(getattr(payload, "outlet_ids", None) or [])


def references_of(events: list[Envelope]) -> References:
    refs = References()
    for event in events:
        if event.event_type in REFERENCE.event_types:
            continue  # master data defines masters; it is not checked against them
        distributor, outlet, rep, skus = _named_masters(event)
        if distributor:
            refs.distributors.add(distributor)
        if outlet:
            refs.outlets.add(outlet)
        refs.outlets.update(_planned_outlets(event))
        if rep:
            refs.reps.add(rep)
        refs.skus.update(skus)
    return refs


def check_references(event: Envelope, known: KnownMasters) -> Rejection | None:
    """Refuse events that name masters this service has never seen, or an outlet with the wrong distributor."""
    if event.event_type in REFERENCE.event_types:
        return None
    distributor, outlet, rep, skus = _named_masters(event)
    if outlet is not None:
        served_by = known.outlet_distributor.get(outlet)
        if served_by is None:
            return Rejection(Reason.UNKNOWN_OUTLET, f"outlet '{outlet}' is not registered", event.event_id)
        if distributor is not None and served_by != distributor:
            return Rejection(
                Reason.OUTLET_NOT_SERVED_BY_DISTRIBUTOR,
                f"outlet '{outlet}' is served by '{served_by}', not '{distributor}'",
                event.event_id,
            )
    elif distributor is not None and distributor not in known.distributors:
        return Rejection(Reason.UNKNOWN_DISTRIBUTOR, f"distributor '{distributor}' is not registered", event.event_id)
    if unplanned := sorted(o for o in _planned_outlets(event) if o not in known.outlet_distributor):
        return Rejection(Reason.UNKNOWN_OUTLET, f"outlets not registered: {', '.join(unplanned)}", event.event_id)
    if rep is not None and rep not in known.reps:
        return Rejection(Reason.UNKNOWN_REP, f"rep '{rep}' is not registered", event.event_id)
    unknown = sorted({sku for sku in skus if sku not in known.skus})
    if unknown:
        return Rejection(Reason.UNKNOWN_SKU, f"SKUs not registered: {', '.join(unknown)}", event.event_id)
    return None


def event_id_of(raw: dict[str, Any]) -> UUID | None:
    """The event id a raw document names, if it is one (to report a rejection against it)."""
    try:
        return UUID(str(raw.get("event_id")))
    except ValueError:
        return None
