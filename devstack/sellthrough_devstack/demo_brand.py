"""The demo brand's masters: zones and regions, distributors, reps with beats, outlets with coordinates, SKUs.

Pure and deterministic for a given random generator: the history (demo_history.py) is built on top of it.
"""

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ZONES = {
    "Z-NORTH": ("North", 28.6, 77.2),
    "Z-SOUTH": ("South", 12.97, 77.59),
    "Z-EAST": ("East", 22.57, 88.36),
    "Z-WEST": ("West", 19.07, 72.88),
}
BRANDS = {
    "Sunrise Tea": "Beverages",
    "Koko Biscuits": "Biscuits",
    "Glow Soap": "Personal care",
    "Crispo Chips": "Snacks",
    "Fresh Mint": "Oral care",
    "Aqua Pure": "Beverages",
    "Golden Ghee": "Dairy",
    "Spark Detergent": "Home care",
    "Tasty Noodles": "Foods",
    "Choco Bar": "Confectionery",
}
CHANNELS = ("grocery", "grocery", "grocery", "chemist", "general store", "modern trade")
# Beats are visited Monday..Saturday; Sunday is a rest day, as for most field forces.
BEAT_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT")
NAMESPACE = uuid.UUID("6f1c1f0e-52c4-4f63-9a43-2f1a3e4d5c6b")


def event(event_type: str, key: str, occurred_at: datetime, actor: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One event as posted to order-capture; its id is derived from `key`, so a rerun posts the same ids."""
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{event_type}:{key}")),
        "event_type": event_type,
        "occurred_at": occurred_at.isoformat(),
        "source": "demo-loader",
        "actor": actor,
        "payload": payload,
    }


@dataclass(frozen=True)
class Sku:
    sku_id: str
    brand: str
    price: float
    popularity: float  # Pareto-distributed: a few SKUs sell most of the volume, as in real assortments


@dataclass(frozen=True)
class Outlet:
    outlet_id: str
    distributor_id: str
    zone_id: str
    channel: str
    outlet_class: str


@dataclass(frozen=True)
class Beat:
    """A route one rep walks on one fixed weekday (0 = Monday)."""

    beat_id: str
    rep_id: str
    distributor_id: str
    weekday: int
    outlets: list[Outlet]


@dataclass
class Masters:
    reference: list[dict[str, Any]] = field(default_factory=list)
    distributors: list[str] = field(default_factory=list)
    distributor_zone: dict[str, str] = field(default_factory=dict)
    skus: list[Sku] = field(default_factory=list)
    outlets: dict[str, Outlet] = field(default_factory=dict)
    reps: dict[str, str] = field(default_factory=dict)  # rep -> distributor
    beats: list[Beat] = field(default_factory=list)


def build_masters(
    rng: random.Random,
    at: datetime,
    *,
    regions_per_zone: int,
    distributors: int,
    outlets: int,
    skus: int,
    reps: int,
) -> Masters:
    masters = Masters()
    regions = _geography(rng, at, regions_per_zone, masters)
    towns = _distributors(rng, at, distributors, regions, masters)
    _skus(rng, at, skus, masters)
    _reps(at, reps, masters)
    _outlets_and_beats(rng, at, outlets, towns, masters)
    return masters


def region_outline(region_id: str, lat: float, lon: float) -> list[list[list[float]]]:
    """An irregular 12-gon around a region's centre, wide enough for its distributors' towns (within 0.5 degrees)
    and their beats. Drawn from its own generator seeded by the region id, so adding it left the demo's other
    random draws (and so every figure of the demo history) as they were."""
    rng = random.Random(region_id)
    ring = []
    for i in range(12):
        angle, radius = 2 * math.pi * i / 12, rng.uniform(0.95, 1.2)
        ring.append([round(lon + radius * math.cos(angle), 4), round(lat + radius * math.sin(angle), 4)])
    return [[*ring, ring[0]]]


def _geography(rng: random.Random, at: datetime, per_zone: int, m: Masters) -> list[tuple[str, str, float, float]]:
    regions = []
    for zone_id, (zone_name, lat, lon) in ZONES.items():
        payload = {"geo_id": zone_id, "level": "zone", "name": zone_name, "parent_id": None}
        m.reference.append(event("GeographyDefined", zone_id, at, "admin", payload))
        for r in range(per_zone):
            region_id = f"R-{zone_id[2:]}-{r + 1}"
            regions.append((region_id, zone_id, lat + rng.uniform(-2, 2), lon + rng.uniform(-2, 2)))
            region: dict[str, Any] = {
                "geo_id": region_id,
                "level": "region",
                "name": f"{zone_name} {r + 1}",
                "parent_id": zone_id,
                "outline": region_outline(region_id, regions[-1][2], regions[-1][3]),
            }
            m.reference.append(event("GeographyDefined", region_id, at, "admin", region))
    return regions


def _distributors(
    rng: random.Random, at: datetime, count: int, regions: list[tuple[str, str, float, float]], m: Masters
) -> dict[str, tuple[float, float]]:
    towns = {}
    for d in range(count):
        region_id, zone_id, lat, lon = regions[d % len(regions)]
        distributor_id = f"D-{d + 1:04d}"
        m.distributors.append(distributor_id)
        m.distributor_zone[distributor_id] = zone_id
        towns[distributor_id] = (lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5))
        payload = {"distributor_id": distributor_id, "name": f"Distributor {d + 1}", "region_id": region_id}
        m.reference.append(event("DistributorRegistered", distributor_id, at, "admin", payload))
    return towns


def _skus(rng: random.Random, at: datetime, count: int, m: Masters) -> None:
    brand_names = list(BRANDS)
    for s in range(count):
        brand = brand_names[s % len(brand_names)]
        sku_id = f"SKU-{s + 1:04d}"
        price = round(rng.choice([10, 20, 35, 50, 90, 150, 240]) * rng.uniform(0.9, 1.1), 2)
        m.skus.append(Sku(sku_id, brand, price, rng.paretovariate(1.2)))
        payload = {
            "sku_id": sku_id,
            "name": f"{brand} {s // len(brand_names) + 1}",
            "brand": brand,
            "category": BRANDS[brand],
            "list_price": f"{price:.2f}",
        }
        m.reference.append(event("SkuRegistered", sku_id, at, "admin", payload))


def _reps(at: datetime, count: int, m: Masters) -> None:
    for r in range(count):
        distributor_id = m.distributors[r % len(m.distributors)]
        rep_id = f"REP-{r + 1:04d}"
        m.reps[rep_id] = distributor_id
        # The rep's territory: its six beats (named as _outlets_and_beats names them), so a rep token posts only
        # at the outlets on its own routes.
        payload = {
            "rep_id": rep_id,
            "name": f"Rep {r + 1}",
            "distributor_id": distributor_id,
            "beat_ids": [_beat_id(rep_id, day) for day in BEAT_DAYS],
        }
        m.reference.append(event("RepRegistered", rep_id, at, "admin", payload))


def _beat_id(rep_id: str, day: str) -> str:
    return f"BEAT-{rep_id[4:]}-{day}"


def _outlets_and_beats(
    rng: random.Random, at: datetime, count: int, towns: dict[str, tuple[float, float]], m: Masters
) -> None:
    # Outlets are dealt to distributors, then to the distributor's reps, then to the rep's six beats; each
    # beat is a street cluster near the distributor's town, so a map of one beat looks like a route.
    reps_of: dict[str, list[str]] = {}
    for rep_id, distributor_id in m.reps.items():
        reps_of.setdefault(distributor_id, []).append(rep_id)
    beat_centres: dict[str, tuple[float, float]] = {}
    beats: dict[str, Beat] = {}
    seen_per_distributor: dict[str, int] = {}
    for o in range(count):
        distributor_id = m.distributors[o % len(m.distributors)]
        nth = seen_per_distributor.get(distributor_id, 0)
        seen_per_distributor[distributor_id] = nth + 1
        town_lat, town_lon = towns[distributor_id]
        rep_ids = reps_of.get(distributor_id, [])
        beat: Beat | None = None
        if rep_ids:  # a distributor without reps has outlets nobody visits: they order nothing
            rep_id = rep_ids[nth % len(rep_ids)]
            weekday = (nth // len(rep_ids)) % len(BEAT_DAYS)
            beat_id = _beat_id(rep_id, BEAT_DAYS[weekday])
            if beat_id not in beats:
                beats[beat_id] = Beat(beat_id, rep_id, distributor_id, weekday, [])
                beat_centres[beat_id] = (town_lat + rng.uniform(-0.08, 0.08), town_lon + rng.uniform(-0.08, 0.08))
            beat = beats[beat_id]
        centre_lat, centre_lon = beat_centres[beat.beat_id] if beat else (town_lat, town_lon)
        outlet = Outlet(
            f"O-{o + 1:06d}",
            distributor_id,
            m.distributor_zone[distributor_id],
            rng.choice(CHANNELS),
            rng.choice("AABBBCCCC"),
        )
        if beat:
            beat.outlets.append(outlet)
        m.outlets[outlet.outlet_id] = outlet
        payload = {
            "outlet_id": outlet.outlet_id,
            "name": f"Store {o + 1}",
            "distributor_id": distributor_id,
            "channel": outlet.channel,
            "outlet_class": outlet.outlet_class,
            "location": {
                "lat": round(centre_lat + rng.gauss(0, 0.01), 6),
                "lon": round(centre_lon + rng.gauss(0, 0.01), 6),
                "accuracy_m": 10.0,
            },
            "beat_id": beat.beat_id if beat else None,
        }
        m.reference.append(event("OutletRegistered", outlet.outlet_id, at, "admin", payload))
    m.beats = list(beats.values())
