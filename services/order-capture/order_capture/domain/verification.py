"""Location verdicts of a batch's orders and visits, and the LocationChecked events that keep them. Pure: the
API module loads the outlets' places and stores the events (README, "Field verification")."""

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import BaseModel, Field

from order_capture.domain.fingerprint import json_datetime
from order_capture.domain.geo import Fix, Point, Verdict, judge
from order_capture.domain.validation import Reason, Rejection
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.field import LocationChecked, LocationVerdict
from sellthrough_contracts.trade import OrderCaptured, VisitRecorded
from sellthrough_runtime.outbox import OutboxRecord

CHECKED_EVENT_TYPES = type_names((OrderCaptured, VisitRecorded))
"""Captures made at an outlet by a rep, which carry the device's position."""

_LOCATION_CHECKED = uuid.UUID("0b6c3f55-6e3c-4a1e-9d2b-6f1e0c6f1a10")
"""Namespace of LocationChecked event ids: uuid5 of the subject's id, so one subject has one verdict event."""
_LOCATION_CHECKED_TYPE = LocationChecked.type_name()
_LOCATION_CHECKED_VERSION = int(LocationChecked.model_fields["schema_version"].default)


@dataclass(frozen=True)
class OutletPlace:
    channel: str | None
    geotag: Point | None
    """The admin's geotag (OutletGeotagged) if any, else the master data's location."""


class LocationResult(BaseModel):
    """The verdict in a POST /v1/events result (README, "Field verification")."""

    verdict: LocationVerdict
    distance_m: float | None = Field(default=None, description="Great-circle distance to the outlet's geotag.")
    accuracy_m: float | None = Field(default=None, description="The accuracy the device reported.")
    radius_m: float = Field(description="The radius of the outlet's channel; on site within radius + accuracy.")


@dataclass(frozen=True)
class Checked:
    event: Envelope
    verdict: Verdict
    channel: str | None

    def result(self) -> LocationResult:
        v = self.verdict
        return LocationResult(verdict=v.verdict, distance_m=v.distance_m, accuracy_m=v.accuracy_m, radius_m=v.radius_m)


def fix_of(event: Envelope) -> Fix:
    payload = getattr(event, "payload", None)
    gps = getattr(payload, "gps", None)
    # OrderCaptured v2 and VisitRecorded v2 both carry gps (a visit's: at check-in) and mock_location.
    mock = bool(getattr(payload, "mock_location", False))
    if gps is None:
        return Fix(None, None, mock)
    return Fix(Point(gps.lat, gps.lon), gps.accuracy_m, mock)


def check_locations(
    events: list[Envelope], places: Mapping[str, OutletPlace], settings: OrderCaptureSettings
) -> dict[uuid.UUID, Checked]:
    """The verdict of each order and visit in `events` whose outlet is known."""
    checked: dict[uuid.UUID, Checked] = {}
    for event in events:
        outlet = getattr(getattr(event, "payload", None), "outlet_id", None)
        place = places.get(str(outlet))
        if event.event_type not in CHECKED_EVENT_TYPES or place is None:
            continue
        verdict = judge(fix_of(event), place.geotag, settings.geo_rule(place.channel))
        checked[event.event_id] = Checked(event, verdict, place.channel)
    return checked


def off_site_rejection(checked: Checked, settings: OrderCaptureSettings) -> Rejection | None:
    """Refuse an off-site capture at an outlet whose channel opted in; elsewhere the verdict is only recorded."""
    v = checked.verdict
    if v.verdict != "off_site" or not settings.rejects_off_site(checked.channel):
        return None
    return Rejection(
        Reason.OFF_SITE,
        f"captured {v.distance_m:.0f} m from the outlet, beyond the {v.radius_m:.0f} m radius (plus accuracy) of "
        f"channel '{checked.channel}', which refuses off-site captures",
        checked.event.event_id,
    )


def location_checked(checked: Checked, recorded_at: datetime, device_clock_skew_s: float | None) -> OutboxRecord:
    """The LocationChecked of a verdict, stamped as accepted at `recorded_at`, as its outbox record.

    Written straight to its wire form rather than built as a model, validated, stamped and dumped: every value
    comes from an event validated already, the outlet's master data or the verdict computed here. The document is
    what `encode_event(LocationChecked(...).stamped(recorded_at))` writes, field for field and byte for byte
    (tests/unit/test_order_capture_location_record.py holds the two together)."""
    subject = checked.event
    payload = getattr(subject, "payload", None)
    v = checked.verdict
    gps = getattr(payload, "gps", None)
    subject_id = str(subject.event_id)
    event_id = _location_checked_id(subject_id)
    distributor_id = getattr(payload, "distributor_id", "")
    stamp = json_datetime(recorded_at)
    document = {
        "event_id": str(event_id),
        "event_type": _LOCATION_CHECKED_TYPE,
        "schema_version": _LOCATION_CHECKED_VERSION,
        "occurred_at": stamp,
        "recorded_at": stamp,
        "source": "order-capture",
        "actor": "order-capture",
        "key": distributor_id,
        "causation_id": subject_id,
        "payload": {
            "subject_event_id": subject_id,
            "subject_event_type": subject.event_type,
            "outlet_id": getattr(payload, "outlet_id", ""),
            "distributor_id": distributor_id,
            "rep_id": getattr(payload, "rep_id", ""),
            "device": subject.source,
            # Name strips its whitespace; an outlet's channel was validated as a Name when it was registered.
            "channel": None if checked.channel is None else checked.channel.strip(),
            "verdict": v.verdict,
            # float(): the model's float fields hold floats, written with a decimal point even when whole.
            "distance_m": _float(v.distance_m),
            "lat": _float(getattr(gps, "lat", None)),
            "lon": _float(getattr(gps, "lon", None)),
            "accuracy_m": _float(v.accuracy_m),
            "radius_m": float(v.radius_m),
            "sync_delay_s": float(round((recorded_at - subject.occurred_at).total_seconds(), 3)),
            "device_clock_skew_s": _float(device_clock_skew_s),
        },
    }
    return OutboxRecord(
        event_id,
        _LOCATION_CHECKED_TYPE,
        _LOCATION_CHECKED_VERSION,
        distributor_id,
        orjson.dumps(document),
        subject.event_id,
    )


def _location_checked_id(subject_id: str) -> uuid.UUID:
    """`uuid.uuid5(_LOCATION_CHECKED, subject_id)`, with the version and variant bits set on the digest's integer
    rather than through UUID's keyword checks (a unit test holds the two equal)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + subject_id.encode(), usedforsecurity=False).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _VERSION_MASK) | _VERSION_5_BITS)


_NAMESPACE_BYTES = _LOCATION_CHECKED.bytes
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_5_BITS = (5 << 76) | (0x8000 << 48)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
