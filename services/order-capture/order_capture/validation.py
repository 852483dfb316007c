"""Per-event validation: contract, clock, and references to known masters. Pure: no I/O."""

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from sellthrough_contracts import Envelope, parse_event
from sellthrough_contracts.topics import REFERENCE
from sellthrough_contracts.versions import UNKNOWN_SCHEMA_VERSION


class Reason(StrEnum):
    """Why one event of a batch was rejected. Stable strings: clients branch on them."""

    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID_FIELDS = "invalid_fields"
    OCCURRED_IN_FUTURE = "occurred_in_future"
    UNKNOWN_OUTLET = "unknown_outlet"
    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_REP = "unknown_rep"
    UNKNOWN_DISTRIBUTOR = "unknown_distributor"
    OUTLET_NOT_SERVED_BY_DISTRIBUTOR = "outlet_not_served_by_distributor"
    EVENT_ID_REUSED = "event_id_reused"


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


@dataclass(frozen=True)
class References:
    outlets: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    reps: set[str] = field(default_factory=set)
    distributors: set[str] = field(default_factory=set)


_SERVER_FIELDS = ("recorded_at", "key")
"""Envelope fields the server sets on acceptance: not part of what the client sent."""


def content_hash(event: Envelope) -> bytes:
    """Fingerprint of what the client sent, to tell an honest retry from a reused event_id."""
    return _fingerprint(event.model_dump(mode="json", exclude=set(_SERVER_FIELDS)))


def _fingerprint(canonical: dict[str, Any]) -> bytes:
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).digest()


class Accepted(NamedTuple):
    """An event as the server accepts it, from one serialisation of the event: the fingerprint of what the client
    sent (`content_hash(event)`) and the wire form of the stamped event (`encode_event(event.stamped(at))`)."""

    event: Envelope
    content_hash: bytes
    key: str
    """The Kafka partition key the stamped event carries."""
    value: bytes


def accepted_form(event: Envelope, recorded_at: datetime) -> Accepted:
    """Fingerprint and wire form from a single `model_dump`, instead of a dump for the fingerprint, a stamped copy
    and a dump of the copy. The server-set fields are filled in the dump as `stamped` fills them in the model;
    orjson over model_dump(mode="json") is `encode_event` (a unit test holds the two together)."""
    document = event.model_dump(mode="json")
    canonical = dict(document)
    del canonical["recorded_at"], canonical["key"]  # _SERVER_FIELDS
    key = event.partition_key()
    document["recorded_at"] = _json_datetime(recorded_at)
    document["key"] = key
    return Accepted(event, _fingerprint(canonical), key, orjson.dumps(document))


_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def _json_datetime(moment: datetime) -> Any:
    """A timestamp as the envelope's model_dump(mode="json") writes it."""
    return _json_instant(moment, moment.utcoffset())


@functools.lru_cache(maxsize=4)
def _json_instant(moment: datetime, offset: timedelta | None) -> Any:
    # Cached because a batch stamps every event alike. Equal datetimes with other offsets are written
    # differently, hence the offset in the key.
    return _DATETIME.dump_python(moment, mode="json")


def parse(raw: Any, now: datetime, future_tolerance: timedelta) -> Envelope | Rejection:
    """Contract and clock checks for one event of a batch."""
    if not isinstance(raw, dict):
        return Rejection(Reason.NOT_AN_OBJECT, "each event must be a JSON object")
    try:
        event = parse_event(raw)
    except ValidationError as error:
        event_id = _event_id_of(raw)
        if any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in error.errors()):
            return Rejection(Reason.UNKNOWN_EVENT_TYPE, f"unknown event_type {raw.get('event_type')!r}", event_id)
        if unknown := [e for e in error.errors() if e["type"] == UNKNOWN_SCHEMA_VERSION]:
            return Rejection(Reason.UNKNOWN_SCHEMA_VERSION, f"{raw.get('event_type')}: {unknown[0]['msg']}", event_id)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in error.errors(include_url=False)
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return Rejection(Reason.INVALID_FIELDS, detail, event_id, errors)
    if event.occurred_at > now + future_tolerance:
        return Rejection(
            Reason.OCCURRED_IN_FUTURE,
            f"occurred_at {event.occurred_at.isoformat()} is ahead of server time {now.isoformat()} "
            f"by more than {int(future_tolerance.total_seconds())}s; check the device clock",
            event.event_id,
        )
    return event


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
    if rep is not None and rep not in known.reps:
        return Rejection(Reason.UNKNOWN_REP, f"rep '{rep}' is not registered", event.event_id)
    unknown = sorted({sku for sku in skus if sku not in known.skus})
    if unknown:
        return Rejection(Reason.UNKNOWN_SKU, f"SKUs not registered: {', '.join(unknown)}", event.event_id)
    return None


def _event_id_of(raw: dict[str, Any]) -> UUID | None:
    try:
        return UUID(str(raw.get("event_id")))
    except ValueError:
        return None
