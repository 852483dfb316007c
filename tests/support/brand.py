"""A tiny, fully known brand for tests, and builders for events and the totals they should produce."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

ZONES = {"Z1": "North", "Z2": "South"}
REGIONS = {"R1": ("Z1", "Delhi"), "R2": ("Z1", "Punjab"), "R3": ("Z2", "Karnataka")}
DISTRIBUTORS = {"D1": "R1", "D2": "R2", "D3": "R3"}
OUTLETS = {"O1": "D1", "O2": "D1", "O3": "D2", "O4": "D3", "O5": "D3"}
SKUS = {"S1": ("Sunrise Tea", "10.50"), "S2": ("Sunrise Tea", "4.00"), "S3": ("Koko Biscuits", "7.25")}
REPS = {"REP-1": "D1", "REP-2": "D2", "REP-3": "D3"}

MASTERS_TIME = min(datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC).replace(microsecond=0) - timedelta(days=300))
"""Before every event the tests post, and within the 400 days back an admin may post (order-capture's window)."""


def event(
    event_type: str,
    payload: dict[str, Any],
    *,
    actor: str = "admin",
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": (occurred_at or datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "source": "test-device",
        "actor": actor,
        "payload": payload,
    }


def outlet_on_beat(outlet_id: str, distributor_id: str, beat_id: str, lat: float, lon: float = 77.59) -> dict[str, Any]:
    """An outlet beyond the test brand's, on a beat (accurately geotagged)."""
    payload = {
        "outlet_id": outlet_id,
        "name": f"Shop {outlet_id}",
        "distributor_id": distributor_id,
        "channel": "grocery",
        "outlet_class": "A",
        "location": {"lat": lat, "lon": lon, "accuracy_m": 5},
        "beat_id": beat_id,
    }
    return event("OutletRegistered", payload, occurred_at=MASTERS_TIME)


def rep_with_territory(
    rep_id: str, distributor_id: str, *, also_covers: tuple[str, ...] = (), beat_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A rep beyond the test brand's: RepRegistered v2 with the distributors and beats it covers."""
    payload = {
        "rep_id": rep_id,
        "name": f"Rep {rep_id}",
        "distributor_id": distributor_id,
        "also_covers_distributor_ids": list(also_covers),
        "beat_ids": list(beat_ids),
    }
    return event("RepRegistered", payload, occurred_at=MASTERS_TIME)


def reference_events() -> list[dict[str, Any]]:
    events = [
        event(
            "GeographyDefined", {"geo_id": z, "level": "zone", "name": n, "parent_id": None}, occurred_at=MASTERS_TIME
        )
        for z, n in ZONES.items()
    ]
    events += [
        event("GeographyDefined", {"geo_id": r, "level": "region", "name": n, "parent_id": z}, occurred_at=MASTERS_TIME)
        for r, (z, n) in REGIONS.items()
    ]
    events += [
        event(
            "DistributorRegistered",
            {"distributor_id": d, "name": f"Dist {d}", "region_id": r},
            occurred_at=MASTERS_TIME,
        )
        for d, r in DISTRIBUTORS.items()
    ]
    events += [
        event(
            "OutletRegistered",
            {
                "outlet_id": o,
                "name": f"Shop {o}",
                "distributor_id": d,
                "channel": "grocery",
                "outlet_class": "A",
                "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
            },
            occurred_at=MASTERS_TIME,
        )
        for o, d in OUTLETS.items()
    ]
    events += [
        event(
            "SkuRegistered",
            {"sku_id": s, "name": f"Item {s}", "brand": b, "category": "c", "list_price": p},
            occurred_at=MASTERS_TIME,
        )
        for s, (b, p) in SKUS.items()
    ]
    events += [
        event("RepRegistered", {"rep_id": r, "name": f"Rep {r}", "distributor_id": d}, occurred_at=MASTERS_TIME)
        for r, d in REPS.items()
    ]
    return events


def order(
    outlet_id: str,
    lines: list[tuple[str, int]],
    *,
    occurred_at: datetime | None = None,
    rep_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    distributor_id = OUTLETS[outlet_id]
    rep = rep_id or next(r for r, d in REPS.items() if d == distributor_id)
    return event(
        "OrderCaptured",
        {
            "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
            "outlet_id": outlet_id,
            "distributor_id": distributor_id,
            "rep_id": rep,
            "visit_id": None,
            "gps": {"lat": 28.6, "lon": 77.2, "accuracy_m": 12.0},
            "lines": [{"sku_id": s, "quantity": q, "unit_price": SKUS[s][1]} for s, q in lines],
        },
        actor=rep,
        occurred_at=occurred_at,
        event_id=event_id,
    )


@dataclass(frozen=True)
class Totals:
    value: Decimal
    units: int
    lines: int


def expected_by_level(orders: list[dict[str, Any]], level: str) -> dict[str, Totals]:
    """What GET /v1/sales should report per node, computed independently of the service."""
    value: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, int] = defaultdict(int)
    lines: dict[str, int] = defaultdict(int)
    for o in orders:
        outlet = o["payload"]["outlet_id"]
        distributor = OUTLETS[outlet]
        region = DISTRIBUTORS[distributor]
        node = {
            "national": "national",
            "zone": REGIONS[region][0],
            "region": region,
            "distributor": distributor,
            "outlet": outlet,
        }[level]
        for line in o["payload"]["lines"]:
            value[node] += Decimal(line["unit_price"]) * line["quantity"]
            units[node] += line["quantity"]
            lines[node] += 1
    return {node: Totals(value[node], units[node], lines[node]) for node in value}


def renumbered(raw: dict[str, Any], **payload: object) -> dict[str, Any]:
    """The same event under a new event_id, with some payload fields changed."""
    return {**raw, "event_id": str(uuid.uuid4()), "payload": {**raw["payload"], **payload}}


def invoice(
    invoice_date: str,
    *,
    occurred_at: datetime | None = None,
    distributor_id: str = "D1",
    quantity: int = 10,
    unit_price: str = "8.00",
) -> dict[str, Any]:
    """A connector's primary invoice of one line of S1."""
    return event(
        "PrimaryInvoiced",
        {
            "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
            "distributor_id": distributor_id,
            "invoice_date": invoice_date,
            "lines": [{"sku_id": "S1", "quantity": quantity, "unit_price": unit_price}],
        },
        actor="erp-1",
        occurred_at=occurred_at,
    )


def stock_count(
    counted_at: str,
    *,
    occurred_at: datetime | None = None,
    distributor_id: str = "D1",
    sku_id: str = "S1",
    quantity: int = 5,
) -> dict[str, Any]:
    """A connector's count of one SKU."""
    return event(
        "StockCounted",
        {
            "count_id": f"C-{uuid.uuid4().hex[:8]}",
            "distributor_id": distributor_id,
            "counted_at": counted_at,
            "lines": [{"sku_id": sku_id, "quantity": quantity}],
        },
        actor="erp-1",
        occurred_at=occurred_at,
    )


def retailer_invoice(
    outlet_id: str,
    lines: list[tuple[str, int]],
    *,
    order_id: str | None = None,
    invoice_date: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A distributor's invoice to a retailer (its DMS), at the SKUs' list prices, naming the order it delivers."""
    at = occurred_at or datetime.now(UTC) - timedelta(minutes=5)
    return event(
        "RetailerInvoiced",
        {
            "invoice_number": f"SI-{uuid.uuid4().hex[:8]}",
            "distributor_id": OUTLETS[outlet_id],
            "outlet_id": outlet_id,
            "invoice_date": invoice_date or at.date().isoformat(),
            "order_id": order_id,
            "lines": [{"sku_id": s, "quantity": q, "value": str(Decimal(SKUS[s][1]) * q)} for s, q in lines],
        },
        actor="erp-1",
        occurred_at=at,
    )
