"""A field force for N reps over D days: each rep walks one beat a day, takes orders, loses the network now and
then (its queue grows, then syncs), sometimes captures away from the outlet, and has its own clock skew. The
simulator writes each device's queue and its own ledger of what was captured, so a test can hold the server's
totals against it."""

import contextlib
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from sellthrough_field.backoff import Backoff, Retryable
from sellthrough_field.flaky import FlakyTransport
from sellthrough_field.ids import new_event_id
from sellthrough_field.queue import EventQueue
from sellthrough_field.reference import Outlet, Rep, World
from sellthrough_field.sync import Limits, Syncer, client_for

_EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class Plan:
    reps: int
    days: int
    end: date
    seed: int = 1
    order_share: float = 0.8
    off_site_share: float = 0.1
    offline_share: float = 0.4
    """Chance that a rep is out of coverage after a call; coverage returns with the same chance inverted."""
    lost_request_share: float = 0.1
    lost_answer_share: float = 0.1
    max_skew_seconds: int = 120
    batch_events: int = 1000
    offline_last_day: bool = False
    """Every rep spends the last day out of coverage: its whole day waits in the queue for `sellthrough-field sync`."""


@dataclass
class Ledger:
    orders: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    syncs: int = 0
    network_failures: int = 0

    def document(self) -> dict[str, Any]:
        by: dict[str, dict[str, dict[str, Decimal]]] = {
            k: defaultdict(lambda: defaultdict(Decimal)) for k in ("rep", "outlet", "rep_outlet_day")
        }
        for o in self.orders:
            for level, key in (
                ("rep", o["rep_id"]),
                ("outlet", o["outlet_id"]),
                ("rep_outlet_day", f"{o['rep_id']}/{o['outlet_id']}/{o['day']}"),
            ):
                by[level][key]["units"] += o["units"]
                by[level][key]["value"] += Decimal(o["value"])
                by[level][key]["orders"] += 1
        return {
            "events": len(self.orders),
            "units": sum(o["units"] for o in self.orders),
            "value": str(sum((Decimal(o["value"]) for o in self.orders), Decimal(0))),
            "totals": {
                level: {
                    k: {"orders": int(v["orders"]), "units": int(v["units"]), "value": str(v["value"])}
                    for k, v in sorted(rows.items())
                }
                for level, rows in by.items()
            },
            "off_site_event_ids": [o["event_id"] for o in self.orders if o["off_site"]],
            "orders": self.orders,
            "devices": self.devices,
            "syncs": self.syncs,
            "network_failures": self.network_failures,
        }


def moved(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    """A point `metres` away on a great circle: where an off-site capture claims to be."""
    d = metres / _EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def route_for(routes: list[tuple[str, list[Outlet]]], day: date, day_index: int) -> list[Outlet]:
    """The day's beat. Beats named for a weekday (`...-MON`, as the demo brand has them) are walked on that day,
    and a day without one is a day off; other beats are walked in rotation, one a day."""
    code = _WEEKDAYS[day.weekday()]
    if any(beat.rsplit("-", 1)[-1] in _WEEKDAYS for beat, _ in routes):
        return next((outlets for beat, outlets in routes if beat.endswith(f"-{code}")), [])
    return routes[day_index % len(routes)][1]


def device_of(rep_id: str) -> str:
    return f"{rep_id}-phone"


class Simulation:
    def __init__(self, world: World, plan: Plan, out: Path, url: str | None, tokens: dict[str, str]) -> None:
        self.world = world
        self.plan = plan
        self.out = out
        self.url = url
        self.tokens = tokens
        self.rng = random.Random(plan.seed)
        self.ledger = Ledger()

    def run(self) -> Ledger:
        reps = self.world.reps[: self.plan.reps]
        for rep in reps:
            self._rep(rep)
        (self.out / "ledger.json").write_text(json.dumps(self.ledger.document(), indent=2))
        return self.ledger

    def _rep(self, rep: Rep) -> None:
        device = device_of(rep.rep_id)
        skew = timedelta(seconds=self.rng.randint(-self.plan.max_skew_seconds, self.plan.max_skew_seconds))
        path = self.out / f"{rep.rep_id}.sqlite"
        self.ledger.devices[rep.rep_id] = {
            "device_id": device,
            "skew_seconds": skew.total_seconds(),
            "queue": path.name,
        }
        routes = list(self.world.beats_of(rep).items())
        if not routes:
            return
        with EventQueue(path) as queue:
            queue.set_meta("device_id", device)
            queue.set_meta("actor", rep.rep_id)
            online = True
            for day_index in range(self.plan.days):
                day = self.plan.end - timedelta(days=self.plan.days - 1 - day_index)
                outlets = route_for(routes, day, day_index)
                clock = datetime.combine(day, time(9, 30), UTC)
                for outlet in outlets:
                    clock += timedelta(minutes=self.rng.randint(15, 50))
                    if self.rng.random() < self.plan.order_share:
                        self._order(queue, rep, outlet, clock, skew, day)
                    # Coverage comes and goes; while offline the queue only grows.
                    online = self.rng.random() >= self.plan.offline_share if online else self.rng.random() < 0.5
                    last_day = day_index == self.plan.days - 1
                    if online and not (last_day and self.plan.offline_last_day):
                        self._sync(queue, skew)
            # The last stretch of the day ends offline as often as not: `sellthrough-field sync` sends the rest.

    def _order(self, queue: EventQueue, rep: Rep, outlet: Outlet, when: datetime, skew: timedelta, day: date) -> None:
        off_site = self.rng.random() < self.plan.off_site_share
        # Off-site: kilometres away, as a rep keying orders from home or the distributor's godown would be.
        distance = self.rng.uniform(2_000, 8_000) if off_site else self.rng.uniform(0, 25)
        lat, lon = moved(outlet.lat, outlet.lon, distance, self.rng.uniform(0, 2 * math.pi))
        skus = self.rng.sample(sorted(self.world.prices), k=self.rng.randint(1, min(3, len(self.world.prices))))
        quantities = {s: self.rng.randint(1, 24) for s in skus}
        lines = [{"sku_id": s, "quantity": q, "unit_price": str(self.world.prices[s])} for s, q in quantities.items()]
        event_id = str(new_event_id())
        event = {
            "event_id": event_id,
            "event_type": "OrderCaptured",
            # The device stamps its own (skewed) clock: that is what a real phone sends.
            "occurred_at": (when + skew).isoformat(),
            "source": device_of(rep.rep_id),
            "actor": rep.rep_id,
            "payload": {
                "order_id": f"ORD-{event_id[-12:]}",
                "outlet_id": outlet.outlet_id,
                "distributor_id": outlet.distributor_id,
                "rep_id": rep.rep_id,
                "visit_id": None,
                "gps": {"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": round(self.rng.uniform(4, 20), 1)},
                "lines": lines,
            },
        }
        queue.enqueue(event)
        self.ledger.orders.append(
            {
                "event_id": event_id,
                "rep_id": rep.rep_id,
                "outlet_id": outlet.outlet_id,
                "distributor_id": outlet.distributor_id,
                "day": day.isoformat(),
                "units": sum(quantities.values()),
                "value": str(sum((self.world.prices[s] * q for s, q in quantities.items()), Decimal(0))),
                "off_site": off_site,
                "distance_m": round(distance, 1),
            }
        )

    def _sync(self, queue: EventQueue, skew: timedelta) -> None:
        actor = queue.meta("actor")
        if self.url is None or actor is None or actor not in self.tokens:
            return
        transport = FlakyTransport(
            httpx.HTTPTransport(), self.rng, self.plan.lost_request_share, self.plan.lost_answer_share
        )
        with client_for(self.url, self.tokens[actor], transport) as client:
            syncer = Syncer(
                queue,
                client,
                limits=Limits(max_events=self.plan.batch_events),
                backoff=Backoff(base_seconds=0.02, max_seconds=0.5, max_attempts=12),
                clock_skew=skew,
            )
            # Still no signal after the retries: the events wait for the next coverage.
            with contextlib.suppress(Retryable):
                syncer.sync()
        self.ledger.syncs += 1
        self.ledger.network_failures += transport.failures
