"""The field force's world, derived from reference data events (as posted to order-capture): who covers which
outlets on which beats, and what the SKUs cost."""

from collections import defaultdict
from dataclasses import dataclass
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
    return World(sorted(reps.values(), key=lambda r: r.rep_id), outlets, prices)
