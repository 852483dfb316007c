"""A believable brand for `make dev`: masters (demo_brand.py) and 90 days of trade history (demo_history.py),
plus posting them to order-capture and waiting until they are visible. Deterministic for a given seed."""

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress

from sellthrough_devstack.demo_brand import build_masters
from sellthrough_devstack.demo_history import build_history, day_start


@dataclass(frozen=True)
class DemoSize:
    regions_per_zone: int = 3
    distributors: int = 40
    outlets: int = 5000
    skus: int = 150
    reps: int = 100
    orders: int = 30000
    days: int = 90


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
    schemes: list[dict[str, Any]] = field(default_factory=list)
    # Visits, orders, deliveries, invoices, stock counts and claims in occurred_at order: what `make dev` posts
    # last.
    history: list[dict[str, Any]] = field(default_factory=list)
    overstocked: list[str] = field(default_factory=list)
    field_orders: int = 0
    """How many orders the history had in the field force's days (left out): what the simulator should take."""


def generate(size: DemoSize = DemoSize(), seed: int = 7, now: datetime | None = None, field_days: int = 0) -> DemoBrand:
    """The brand and its history. `field_days` > 0 leaves the reps' orders and visits of the last `field_days` days
    out of the history: `make dev` has the field-force simulator capture those days on the reps' phones instead."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    masters = build_masters(
        rng,
        day_start(now, size.days) - timedelta(days=1),
        regions_per_zone=size.regions_per_zone,
        distributors=size.distributors,
        outlets=size.outlets,
        skus=size.skus,
        reps=size.reps,
    )
    field_from = day_start(now, field_days) if field_days > 0 else None
    history = build_history(rng, masters, now, size.days, size.orders, field_from)
    # Stable sort: on a tie the order comes before its delivery, an opening balance before an invoice.
    trade = sorted([*history.trade, *history.orders, *history.claims], key=lambda e: e["occurred_at"])
    beat = next(b for b in masters.beats if b.outlets)
    target = OrderTarget(beat.rep_id, beat.distributor_id, beat.outlets[0].outlet_id, masters.skus[0].sku_id)
    return DemoBrand(
        masters.reference, history.orders, target, history.schemes, trade, history.overstocked, history.field_orders
    )


def line_count(events: list[dict[str, Any]]) -> int:
    """Order lines among `events` (invoices and deliveries have lines too, but are not secondary sales)."""
    return sum(len(e["payload"]["lines"]) for e in events if e["event_type"] == "OrderCaptured")


def wait_for_sales_lines(
    query_api_url: str, token: str, lines: int, timeout: float = 180, days: int = DemoSize.days
) -> None:
    """Wait until the sales projection holds `lines` order lines, so `make dev` returns with data visible."""
    deadline = time.monotonic() + timeout
    today = datetime.now(UTC).date()
    since, until = str(today - timedelta(days=days + 2)), str(today + timedelta(days=1))
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

    def merged(self, other: "PostReport") -> "PostReport":
        counts = {status: self.counts[status] + other.counts[status] for status in self.counts}
        return PostReport(counts, [*self.accepted, *other.accepted], [*self.rejections, *other.rejections])


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


def distributor_ids(reference: Sequence[dict[str, Any]]) -> list[str]:
    """Every distributor registered in `reference`: what the dev stack's connector token is bound to."""
    return sorted({e["payload"]["distributor_id"] for e in reference if e["event_type"] == "DistributorRegistered"})
