"""Field-force events: beat plans and a rep's working day (keyed by rep id: each is about one rep, and none is
tied to one distributor, since a rep may cover several); and field verification, where an event was captured,
judged by order-capture when it accepts it (keyed by distributor or outlet)."""

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field, field_validator

from sellthrough_contracts.common import GeoPoint, Id, Name, Payload
from sellthrough_contracts.envelope import Envelope


class BeatPlannedPayload(Payload):
    rep_id: Id
    plan_date: date = Field(description="The day the plan is for, in the brand's time zone.")
    outlet_ids: list[Id] = Field(
        max_length=500,
        description="The outlets to call on, in the planned order; empty: no calls planned that day.",
    )

    @field_validator("outlet_ids")
    @classmethod
    def _once_each(cls, outlet_ids: list[str]) -> list[str]:
        if len(set(outlet_ids)) != len(outlet_ids):
            raise ValueError("an outlet is planned at most once a day")
        return outlet_ids


class BeatPlanned(Envelope):
    """A rep's plan for one day. A later plan for the same rep and day replaces it whole: the one with the latest
    occurred_at wins, whatever order they arrive in."""

    event_type: Literal["BeatPlanned"] = "BeatPlanned"
    payload: BeatPlannedPayload

    def partition_key(self) -> str:
        return self.payload.rep_id


class AttendancePayload(Payload):
    rep_id: Id
    gps: GeoPoint | None = Field(default=None, description="Where the device was.")
    mock_location: bool = Field(default=False, description="The device reported its location as mocked.")


class DayStarted(Envelope):
    """A rep starts its working day (attendance); occurred_at is the time on the device."""

    event_type: Literal["DayStarted"] = "DayStarted"
    payload: AttendancePayload

    def partition_key(self) -> str:
        return self.payload.rep_id


class DayEnded(Envelope):
    """A rep ends its working day; occurred_at is the time on the device."""

    event_type: Literal["DayEnded"] = "DayEnded"
    payload: AttendancePayload

    def partition_key(self) -> str:
        return self.payload.rep_id


LocationVerdict = Literal["on_site", "off_site", "low_accuracy", "no_gps", "outlet_not_geotagged", "mock_location"]
"""How a capture's position compares with its outlet's geotag (README, "Field verification")."""


CheckedEventType = Literal["OrderCaptured", "VisitRecorded"]
"""The event types whose location is judged: captures at an outlet, which carry the device's position."""


class LocationCheckedPayload(Payload):
    subject_event_id: UUID = Field(description="The order or visit judged (also the envelope's causation_id).")
    subject_event_type: CheckedEventType
    outlet_id: Id
    distributor_id: Id
    rep_id: Id
    device: str = Field(min_length=1, max_length=128, description="The subject's source: the device that captured it.")
    channel: Name | None = Field(default=None, description="The outlet's channel, whose radius applied.")
    verdict: LocationVerdict
    distance_m: float | None = Field(
        default=None, ge=0, description="Great-circle distance from the device to the outlet's geotag, in metres."
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="Where the device was (its gps), if it said.")
    lon: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, description="The accuracy the device reported, in metres.")
    radius_m: float = Field(ge=0, description="The channel's radius; on site within radius_m + accuracy_m.")
    sync_delay_s: float = Field(description="recorded_at - occurred_at of the subject, in seconds.")
    device_clock_skew_s: float | None = Field(
        default=None,
        description="Device clock minus server clock when the batch was posted (its device_time), in seconds; "
        "empty when the batch did not say.",
    )


class LocationChecked(Envelope):
    """Derived by order-capture in the transaction that accepts an order or visit: the event as the device sent
    it stays unchanged (its content is its idempotency fingerprint), and the verdict travels beside it."""

    event_type: Literal["LocationChecked"] = "LocationChecked"
    payload: LocationCheckedPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class OutletGeotaggedPayload(Payload):
    outlet_id: Id
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, description="Accuracy of the fix, in metres.")
    proposed_by_event_id: UUID | None = Field(
        default=None, description="The capture whose position an admin confirmed, when it came from one."
    )


class OutletGeotagged(Envelope):
    """An admin sets or moves an outlet's geotag (admin-only: a rep's capture can only propose one). It wins over
    the master data's location from then on."""

    event_type: Literal["OutletGeotagged"] = "OutletGeotagged"
    payload: OutletGeotaggedPayload

    def partition_key(self) -> str:
        return self.payload.outlet_id
