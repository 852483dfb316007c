"""A small, believable brand for `make dev`: geography, distributors, outlets with coordinates, SKUs with
brands and prices, reps, and a few weeks of orders with a weekly rhythm. Deterministic for a given seed."""

import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress

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
NAMESPACE = uuid.UUID("6f1c1f0e-52c4-4f63-9a43-2f1a3e4d5c6b")


@dataclass(frozen=True)
class DemoSize:
    regions_per_zone: int = 3
    distributors: int = 40
    outlets: int = 2000
    skus: int = 150
    reps: int = 100
    orders: int = 3000
    days: int = 30


def _event(event_type: str, key: str, occurred_at: datetime, actor: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{event_type}:{key}")),
        "event_type": event_type,
        "occurred_at": occurred_at.isoformat(),
        "source": "demo-loader",
        "actor": actor,
        "payload": payload,
    }


@dataclass(frozen=True)
class OrderTarget:
    """Ids that make a valid order for the README's curl example."""

    rep_id: str
    distributor_id: str
    outlet_id: str
    sku_id: str


@dataclass
class DemoBrand:
    reference: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    example_order_target: OrderTarget


def generate(size: DemoSize = DemoSize(), seed: int = 7, now: datetime | None = None) -> DemoBrand:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    masters_time = now - timedelta(days=size.days + 1)
    reference: list[dict[str, Any]] = []
    regions: list[tuple[str, float, float]] = []
    for zone_id, (zone_name, lat, lon) in ZONES.items():
        reference.append(
            _event(
                "GeographyDefined",
                zone_id,
                masters_time,
                "admin",
                {"geo_id": zone_id, "level": "zone", "name": zone_name, "parent_id": None},
            )
        )
        for r in range(size.regions_per_zone):
            region_id = f"R-{zone_id[2:]}-{r + 1}"
            regions.append((region_id, lat + rng.uniform(-2, 2), lon + rng.uniform(-2, 2)))
            reference.append(
                _event(
                    "GeographyDefined",
                    region_id,
                    masters_time,
                    "admin",
                    {"geo_id": region_id, "level": "region", "name": f"{zone_name} {r + 1}", "parent_id": zone_id},
                )
            )
    distributors = []
    for d in range(size.distributors):
        region_id, lat, lon = regions[d % len(regions)]
        distributor_id = f"D-{d + 1:04d}"
        distributors.append((distributor_id, lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5)))
        reference.append(
            _event(
                "DistributorRegistered",
                distributor_id,
                masters_time,
                "admin",
                {"distributor_id": distributor_id, "name": f"Distributor {d + 1}", "region_id": region_id},
            )
        )
    skus = []
    brand_names = list(BRANDS)
    for s in range(size.skus):
        brand = brand_names[s % len(brand_names)]
        sku_id = f"SKU-{s + 1:04d}"
        price = round(rng.choice([10, 20, 35, 50, 90, 150, 240]) * rng.uniform(0.9, 1.1), 2)
        skus.append((sku_id, price, rng.paretovariate(1.2)))
        reference.append(
            _event(
                "SkuRegistered",
                sku_id,
                masters_time,
                "admin",
                {
                    "sku_id": sku_id,
                    "name": f"{brand} {s // len(brand_names) + 1}",
                    "brand": brand,
                    "category": BRANDS[brand],
                    "list_price": f"{price:.2f}",
                },
            )
        )
    outlets_by_distributor: dict[str, list[str]] = {}
    for o in range(size.outlets):
        distributor_id, lat, lon = distributors[o % len(distributors)]
        outlet_id = f"O-{o + 1:06d}"
        outlets_by_distributor.setdefault(distributor_id, []).append(outlet_id)
        reference.append(
            _event(
                "OutletRegistered",
                outlet_id,
                masters_time,
                "admin",
                {
                    "outlet_id": outlet_id,
                    "name": f"Store {o + 1}",
                    "distributor_id": distributor_id,
                    "channel": rng.choice(CHANNELS),
                    "outlet_class": rng.choice("AABBBCCCC"),
                    "location": {
                        "lat": round(lat + rng.uniform(-0.1, 0.1), 6),
                        "lon": round(lon + rng.uniform(-0.1, 0.1), 6),
                        "accuracy_m": 10.0,
                    },
                },
            )
        )
    reps_by_distributor: dict[str, list[str]] = {}
    for r in range(size.reps):
        distributor_id = distributors[r % len(distributors)][0]
        rep_id = f"REP-{r + 1:04d}"
        reps_by_distributor.setdefault(distributor_id, []).append(rep_id)
        reference.append(
            _event(
                "RepRegistered",
                rep_id,
                masters_time,
                "admin",
                {"rep_id": rep_id, "name": f"Rep {r + 1}", "distributor_id": distributor_id},
            )
        )

    weights = [w for _, _, w in skus]
    served = sorted(set(outlets_by_distributor) & set(reps_by_distributor))  # distributors with outlets and reps
    orders = []
    weekday_factor = (1.0, 1.1, 1.0, 1.2, 1.4, 1.6, 0.3)  # Monday..Sunday: weekend stocking, quiet Sunday
    day_weights = [weekday_factor[(now - timedelta(days=d)).weekday()] for d in range(size.days)]
    for n in range(size.orders):
        days_ago = rng.choices(range(size.days), weights=day_weights)[0]
        at = (now - timedelta(days=days_ago)).replace(hour=rng.randint(9, 19), minute=rng.randint(0, 59))
        at = min(at, now - timedelta(minutes=1))
        distributor_id = rng.choice(served)
        outlet_id = rng.choice(outlets_by_distributor[distributor_id])
        rep_id = rng.choice(reps_by_distributor[distributor_id])
        chosen = rng.choices(skus, weights=weights, k=rng.randint(1, 6))
        lines = {
            sku_id: {"sku_id": sku_id, "quantity": rng.randint(1, 24), "unit_price": f"{price:.2f}"}
            for sku_id, price, _ in chosen
        }
        orders.append(
            _event(
                "OrderCaptured",
                f"order-{n}",
                at,
                rep_id,
                {
                    "order_id": f"ORD-{n + 1:07d}",
                    "outlet_id": outlet_id,
                    "distributor_id": distributor_id,
                    "rep_id": rep_id,
                    "visit_id": None,
                    "gps": None,
                    "lines": list(lines.values()),
                },
            )
        )
    first = served[0]
    target = OrderTarget(reps_by_distributor[first][0], first, outlets_by_distributor[first][0], skus[0][0])
    return DemoBrand(reference, orders, target)


def line_count(orders: list[dict[str, Any]]) -> int:
    return sum(len(o["payload"]["lines"]) for o in orders)


def wait_for_sales_lines(query_api_url: str, token: str, lines: int, timeout: float = 120) -> None:
    """Wait until the sales projection holds `lines` order lines, so `make dev` returns with data visible."""
    deadline = time.monotonic() + timeout
    today = datetime.now(UTC).date()
    since, until = str(today - timedelta(days=DemoSize.days + 2)), str(today + timedelta(days=1))
    with httpx.Client(base_url=query_api_url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
        while time.monotonic() < deadline:
            response = client.get("/v1/sales", params={"level": "national", "from": since, "to": until})
            response.raise_for_status()  # a 4xx here is a bug in this loader, not a reason to keep waiting
            if response.json()["total"]["lines"] >= lines:
                return
            time.sleep(0.3)
    raise TimeoutError("query-api did not project the demo orders in time; see .dev/logs/query-api.log")


def curl_example(order_capture_url: str, query_api_url: str, tokens_env: Path, target: OrderTarget) -> str:
    """A shell script that posts one order as a rep and reads the outlet's sales back."""
    return f"""# Post one order as rep {target.rep_id}, then drill down to its distributor's outlets.
source {tokens_env}
EVENT_ID=$(cat /proc/sys/kernel/random/uuid)
curl -s -X POST {order_capture_url}/v1/events \\
  -H "Authorization: Bearer $REP_TOKEN" -H "Content-Type: application/json" \\
  -d '{{"events": [{{"event_id": "'"$EVENT_ID"'", "event_type": "OrderCaptured",
        "occurred_at": "'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'", "source": "phone-42", "actor": "{target.rep_id}",
        "payload": {{"order_id": "ORD-'"${{EVENT_ID:0:8}}"'", "outlet_id": "{target.outlet_id}",
                    "distributor_id": "{target.distributor_id}", "rep_id": "{target.rep_id}",
                    "gps": {{"lat": 28.61, "lon": 77.21, "accuracy_m": 8}},
                    "lines": [{{"sku_id": "{target.sku_id}", "quantity": 12, "unit_price": "45.00"}}]}}}}]}}'
echo
sleep 2  # the order travels outbox -> Kafka -> query-api; usually well under a second
curl -s -H "Authorization: Bearer $ANALYST_TOKEN" \\
  "{query_api_url}/v1/sales?level=outlet&parent_id={target.distributor_id}&limit=3"
echo
"""


def _batches(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


@dataclass
class PostReport:
    counts: dict[str, int]
    accepted: list[dict[str, Any]]
    rejections: list[str]


def post_all(base_url: str, token: str, events: list[dict[str, Any]], label: str, batch_size: int = 500) -> PostReport:
    """POST events in batches with a progress bar; returns counts, the accepted events and why others were
    rejected. Raises on an HTTP error."""
    report = PostReport({"accepted": 0, "duplicate": 0, "rejected": 0}, [], [])
    with (
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client,
        Progress() as progress,
    ):
        task = progress.add_task(label, total=len(events))
        for batch in _batches(events, batch_size):
            response = client.post("/v1/events", json={"events": batch})
            response.raise_for_status()
            body = response.json()
            for status in report.counts:
                report.counts[status] += body[status]
            for event, result in zip(batch, body["results"], strict=True):
                if result["status"] == "accepted":
                    report.accepted.append(event)
                elif result["status"] == "rejected":
                    report.rejections.append(
                        f"{event['event_type']} {event['event_id']}: {result['reason']} ({result['detail']})"
                    )
            progress.advance(task, len(batch))
    return report


_MASTER_KINDS = {
    "DistributorRegistered": ("distributors", "distributor_id"),
    "OutletRegistered": ("outlets", "outlet_id"),
    "SkuRegistered": ("skus", "sku_id"),
    "RepRegistered": ("reps", "rep_id"),
}


def master_counts(reference: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many distinct masters of each kind order-capture checks orders against, in these events."""
    ids: dict[str, set[str]] = {kind: set() for kind, _ in _MASTER_KINDS.values()}
    for event in reference:
        if event["event_type"] in _MASTER_KINDS:
            kind, id_field = _MASTER_KINDS[event["event_type"]]
            ids[kind].add(event["payload"][id_field])
    return {kind: len(found) for kind, found in ids.items()}


def wait_for_masters(
    base_url: str,
    token: str,
    reference: Sequence[dict[str, Any]] | None = None,
    *,
    outlets: int | None = None,
    timeout: float = 120,
) -> None:
    """Orders are validated against reference data, which reaches order-capture through Kafka, one partition
    per entity key: wait until every kind of master in `reference` has arrived, not only the outlets."""
    expected = master_counts(reference) if reference is not None else {"outlets": outlets or 0}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
        while time.monotonic() < deadline:
            known = client.get("/v1/reference/status").json()
            if all(known.get(kind, 0) >= count for kind, count in expected.items()):
                return
            time.sleep(0.2)
    raise TimeoutError(f"order-capture did not receive the reference data in time (expected {expected}); see logs")
