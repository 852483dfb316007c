"""The field force's world, derived from reference data events (as posted to order-capture): who covers which
outlets on which beats, what the SKUs cost, and any beat plans already made."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Outlet:
    outlet_id: str
    distributor_id: str
    beat_id: str | None
    lat: float
    lon: float


@dataclass(frozen=True)
class Rep:
    rep_id: str
    distributors: tuple[str, ...]
    beat_ids: tuple[str, ...]


@dataclass(frozen=True)
class World:
    reps: list[Rep]
    outlets: dict[str, Outlet]
    prices: dict[str, Decimal]
    plans: dict[tuple[str, date], list[str]] = field(default_factory=dict)
    """(rep, day) -> outlet ids in sequence, from BeatPlanned events: the simulator follows these."""

    def beats_of(self, rep: Rep) -> dict[str, list[Outlet]]:
        """The rep's routes: its outlets grouped by beat, as order-capture's territory check reads RepRegistered v2
        (its distributors' outlets, narrowed to beat_ids when it lists any). Outlets without a beat form one
        route named after the distributor."""
        routes: dict[str, list[Outlet]] = defaultdict(list)
        for outlet in sorted(self.outlets.values(), key=lambda o: o.outlet_id):
            if outlet.distributor_id not in rep.distributors:
                continue
            if rep.beat_ids and outlet.beat_id not in rep.beat_ids:
                continue
            routes[outlet.beat_id or f"all-{outlet.distributor_id}"].append(outlet)
        return dict(sorted(routes.items()))


def world_from(events: list[dict[str, Any]]) -> World:
    reps: dict[str, Rep] = {}
    outlets: dict[str, Outlet] = {}
    prices: dict[str, Decimal] = {}
    # (rep, day) -> (occurred_at, outlet ids): the latest occurred_at wins, as query-api keeps plans.
    plans: dict[tuple[str, date], tuple[datetime, list[str]]] = {}
    geotags: dict[str, tuple[float, float]] = {}
    for event in events:
        payload = event.get("payload", {})
        kind = event.get("event_type")
        if kind == "RepRegistered":
            reps[payload["rep_id"]] = Rep(
                payload["rep_id"],
                (payload["distributor_id"], *payload.get("also_covers_distributor_ids", [])),
                tuple(payload.get("beat_ids", [])),
            )
        elif kind == "OutletRegistered":
            location = payload["location"]
            outlets[payload["outlet_id"]] = Outlet(
                payload["outlet_id"],
                payload["distributor_id"],
                payload.get("beat_id"),
                location["lat"],
                location["lon"],
            )
        elif kind == "SkuRegistered":
            prices[payload["sku_id"]] = Decimal(str(payload["list_price"]))
        elif kind == "OutletGeotagged":
            geotags[payload["outlet_id"]] = (payload["lat"], payload["lon"])
        elif kind == "BeatPlanned":
            key = (payload["rep_id"], date.fromisoformat(payload["plan_date"]))
            occurred_at = _instant(event.get("occurred_at"))
            if key not in plans or occurred_at >= plans[key][0]:
                plans[key] = (occurred_at, list(payload["outlet_ids"]))
    # An admin's geotag wins over the master data's location, as in order-capture's verdicts.
    for outlet_id, (lat, lon) in geotags.items():
        if outlet_id in outlets:
            o = outlets[outlet_id]
            outlets[outlet_id] = Outlet(o.outlet_id, o.distributor_id, o.beat_id, lat, lon)
    return World(
        sorted(reps.values(), key=lambda r: r.rep_id),
        outlets,
        prices,
        {key: outlet_ids for key, (_, outlet_ids) in plans.items()},
    )


def _instant(text: object) -> datetime:
    if not isinstance(text, str):
        return datetime.min.replace(tzinfo=UTC)
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
