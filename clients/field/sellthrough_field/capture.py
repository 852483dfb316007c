"""A decided day (fieldday.py) as the events its rep's phone records, stamped with the phone's skewed clock, and
the ledger's account of it. Pure: no queue, no network."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sellthrough_field.fieldday import Call, FieldDay, Fix
from sellthrough_field.ids import new_event_id

Event = dict[str, Any]


@dataclass
class CapturedDay:
    steps: list[list[Event]]
    """The events in the order the phone records them, in steps between which coverage may come or go: the day's
    start, each call (its order, then its visit at check-out), the day's end. An absent day has none."""
    entry: dict[str, Any]
    """The ledger's record of the rep's day."""
    orders: list[dict[str, Any]] = field(default_factory=list)
    """The ledger's records of the day's orders."""


def _gps(fix: Fix) -> dict[str, float]:
    return {"lat": round(fix.lat, 7), "lon": round(fix.lon, 7), "accuracy_m": fix.accuracy_m}


class Phone:
    """One rep's device: its id, its clock's skew and the prices it orders at."""

    def __init__(self, rep_id: str, device_id: str, skew: timedelta, prices: dict[str, Decimal]) -> None:
        self.rep_id = rep_id
        self.device_id = device_id
        self.skew = skew
        self.prices = prices

    def stamp(self, at: datetime) -> str:
        """A true time as this phone's clock shows it: what a real phone sends."""
        return (at + self.skew).isoformat()

    def event(self, event_type: str, occurred_at: datetime, payload: dict[str, Any], **extra: Any) -> Event:
        return {
            "event_id": str(new_event_id()),
            "event_type": event_type,
            "occurred_at": self.stamp(occurred_at),
            "source": self.device_id,
            "actor": self.rep_id,
            "payload": payload,
            **extra,
        }

    def day(self, d: FieldDay, plan_event_id: str | None) -> CapturedDay:
        plan = None
        if d.plan is not None:
            plan = {"outlet_ids": list(d.plan.outlet_ids), "source": d.plan.source, "event_id": plan_event_id}
        entry: dict[str, Any] = {
            "rep_id": d.rep_id,
            "day": d.day.isoformat(),
            "plan": plan,
            "attendance": "absent" if d.absent else "attended",
            "started_at": None,
            "ended_at": None,
            "visits": [],
        }
        captured = CapturedDay([], entry)
        if d.absent or d.started_at is None or d.ended_at is None:
            return captured
        captured.steps.append([self._attendance("DayStarted", d.started_at, d.start_fix)])
        entry["started_at"] = captured.steps[0][0]["occurred_at"]
        for call in d.calls:
            captured.steps.append(self._call(d, call, captured))
        captured.steps.append([self._attendance("DayEnded", d.ended_at, d.end_fix)])
        entry["ended_at"] = captured.steps[-1][0]["occurred_at"]
        return captured

    def _attendance(self, kind: str, at: datetime, fix: Fix | None) -> Event:
        payload = {"rep_id": self.rep_id, "gps": _gps(fix) if fix else None, "mock_location": False}
        return self.event(kind, at, payload)

    def _call(self, d: FieldDay, call: Call, captured: CapturedDay) -> list[Event]:
        outlet = call.outlet
        events: list[Event] = []
        order_event_id = order_id = None
        if call.productive and call.ordered_at is not None and call.order_fix is not None:
            order = self.event(
                "OrderCaptured",
                call.ordered_at,
                {
                    "order_id": "",
                    "outlet_id": outlet.outlet_id,
                    "distributor_id": outlet.distributor_id,
                    "rep_id": self.rep_id,
                    "visit_id": call.visit_id,
                    "gps": _gps(call.order_fix),
                    "lines": [{"sku_id": s, "quantity": q, "unit_price": str(self.prices[s])} for s, q in call.order],
                },
                schema_version=2,
            )
            order_event_id = order["event_id"]
            order_id = order["payload"]["order_id"] = f"ORD-{order_event_id[-12:]}"
            events.append(order)
            captured.orders.append(
                {
                    "event_id": order_event_id,
                    "order_id": order_id,
                    "visit_id": call.visit_id,
                    "rep_id": self.rep_id,
                    "outlet_id": outlet.outlet_id,
                    "distributor_id": outlet.distributor_id,
                    "day": d.day.isoformat(),
                    "occurred_at": order["occurred_at"],
                    "units": sum(q for _, q in call.order),
                    "value": str(sum((self.prices[s] * q for s, q in call.order), Decimal(0))),
                    "off_site": call.off_site,
                    "verdict": call.verdict,
                    "distance_m": call.distance_m,
                }
            )
        visit = self.event(
            "VisitRecorded",
            call.checked_out_at,
            {
                "visit_id": call.visit_id,
                "outlet_id": outlet.outlet_id,
                "distributor_id": outlet.distributor_id,
                "rep_id": self.rep_id,
                "productive": call.productive,
                "no_order_reason": call.no_order_reason,
                "gps": _gps(call.check_in),
                "checked_in_at": self.stamp(call.checked_in_at),
                "checked_out_at": self.stamp(call.checked_out_at),
                "check_out_gps": _gps(call.check_out),
                "mock_location": False,
            },
            schema_version=2,
        )
        events.append(visit)
        captured.entry["visits"].append(
            {
                "event_id": visit["event_id"],
                "visit_id": call.visit_id,
                "outlet_id": outlet.outlet_id,
                "distributor_id": outlet.distributor_id,
                "planned": call.planned,
                "checked_in_at": visit["payload"]["checked_in_at"],
                "checked_out_at": visit["payload"]["checked_out_at"],
                "minutes_at_outlet": round((call.checked_out_at - call.checked_in_at).total_seconds() / 60),
                "productive": call.productive,
                "order_event_id": order_event_id,
                "order_id": order_id,
                "no_order_reason": call.no_order_reason,
                "off_site": call.off_site,
                "verdict": call.verdict,
                "distance_m": call.distance_m,
            }
        )
        return events
