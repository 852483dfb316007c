"""The benchmark's brand and its orders: the demo brand's masters (devstack/demo_brand.py) and random
OrderCaptured events in the forms each scenario needs (HTTP bodies, outbox rows, Kafka records, COPY rows)."""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from sellthrough_contracts import Envelope, encode_event, parse_event, topic_for
from sellthrough_devstack.demo_brand import Masters, build_masters

MASTERS_AT = datetime.combine(datetime.now(UTC).date() - timedelta(days=120), time(), UTC)
"""Before the 90 days of orders, and inside the window order-capture takes an admin's events in (400 days): a fixed
date fell out of it and every reference event was refused."""

LineRow = tuple[date, str, str, Decimal, int, int]
"""One order line as the sales projection stores it: day, outlet, SKU, value, units, lines (= 1)."""


BRAND_OUTLETS = 5000


def brand(seed: int = 7, outlets: int = BRAND_OUTLETS) -> Masters:
    """The demo brand's shape: 4 zones, 12 regions, 40 distributors, 5,000 outlets, 150 SKUs, 100 reps. Fewer
    outlets (the tests' tiny run) make the reference data each stack is given, and waits for, that much smaller."""
    return build_masters(
        random.Random(seed), MASTERS_AT, regions_per_zone=3, distributors=40, outlets=outlets, skus=150, reps=100
    )


@dataclass
class OrderFactory:
    """Orders a rep could really take: an outlet on one of the rep's beats, 1 to 6 SKUs weighted by popularity."""

    masters: Masters
    rng: random.Random

    def __post_init__(self) -> None:
        self._calls = [(beat.rep_id, outlet) for beat in self.masters.beats for outlet in beat.outlets]
        self._skus = self.masters.skus
        self._weights = [s.popularity for s in self._skus]
        self._count = 0

    def order(self, occurred_at: datetime) -> dict[str, Any]:
        rng = self.rng
        rep_id, outlet = self._calls[rng.randrange(len(self._calls))]
        lines = {}
        for sku in rng.choices(self._skus, weights=self._weights, k=rng.randint(1, 6)):
            lines[sku.sku_id] = {"sku_id": sku.sku_id, "quantity": rng.randint(1, 24), "unit_price": f"{sku.price:.2f}"}
        self._count += 1
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": "OrderCaptured",
            "occurred_at": occurred_at.isoformat(),
            "source": "bench",
            "actor": rep_id,
            "payload": {
                "order_id": f"BENCH-{self._count:09d}-{rng.getrandbits(32):08x}",
                "outlet_id": outlet.outlet_id,
                "distributor_id": outlet.distributor_id,
                "rep_id": rep_id,
                "visit_id": None,
                "gps": None,
                "lines": list(lines.values()),
            },
        }

    def past_order(self, today: date, oldest_days: int, newest_days: int) -> dict[str, Any]:
        """An order on a random day between `oldest_days` and `newest_days` ago, during working hours (UTC)."""
        day = today - timedelta(days=self.rng.randint(newest_days, oldest_days))
        at = datetime(day.year, day.month, day.day, 4, tzinfo=UTC) + timedelta(minutes=self.rng.randint(0, 540))
        return self.order(at)


def lines_of(events: list[dict[str, Any]]) -> int:
    return sum(len(e["payload"]["lines"]) for e in events)


def batches(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def http_body(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": events})


def accepted(event: dict[str, Any], recorded_at: datetime) -> Envelope:
    """The event as order-capture would have accepted it (validated, recorded_at and key set)."""
    return parse_event(event).stamped(recorded_at)


def kafka_record(event: Envelope) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) exactly as the outbox relay publishes the event."""
    headers = [
        ("event_id", str(event.event_id).encode()),
        ("event_type", event.event_type.encode()),
        ("schema_version", str(event.schema_version).encode()),
    ]
    key = event.key or event.partition_key()
    return topic_for(event.event_type).name, key.encode(), encode_event(event), headers


def outbox_row(event: Envelope) -> tuple[uuid.UUID, str, int, str, str, bytes, str]:
    """A row of order-capture's outbox table, as append_to_outbox writes it."""
    return (
        event.event_id,
        event.event_type,
        event.schema_version,
        topic_for(event.event_type).name,
        event.key or event.partition_key(),
        encode_event(event),
        "{}",
    )


OUTBOX_COLUMNS = ("event_id", "event_type", "schema_version", "topic", "partition_key", "value", "trace_headers")


def line_rows(event: dict[str, Any]) -> list[LineRow]:
    """The order's lines as rows shaped like the sales projection (day in UTC, the bench's business zone)."""
    day = datetime.fromisoformat(event["occurred_at"]).astimezone(UTC).date()
    outlet = event["payload"]["outlet_id"]
    return [
        (day, outlet, line["sku_id"], Decimal(line["unit_price"]) * line["quantity"], line["quantity"], 1)
        for line in event["payload"]["lines"]
    ]
