"""Field-force planning and attendance: beat plans and a rep's working day.

Keyed by rep id: each is about one rep, and none is tied to one distributor (a rep may cover several)."""

from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from sellthrough_contracts.common import GeoPoint, Id, Payload
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
