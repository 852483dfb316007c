"""Scenario 3, freshness: time from HTTP accept (the POST's answer) to visible in GET /v1/sales, under a
steady paced load. A poller reads the national total for today every `poll_interval`; a batch is visible at
the answer of the first poll whose total covers every line accepted up to and including it."""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx

from bench.data import OrderFactory, batches, http_body, lines_of
from bench.http_load import Body, paced
from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms, percentile
from sellthrough_devstack.services import ServiceProcess

TARGET = Target("p99 < 1 s", max_value=1000)


@dataclass(frozen=True)
class FreshnessParams:
    events_per_second: int
    seconds: float
    batch: int
    max_in_flight: int = 32
    poll_interval: float = 0.05


async def _national_lines(client: httpx.AsyncClient, today: date) -> int:
    params = {"level": "national", "from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    response = await client.get("/v1/sales", params=params)
    response.raise_for_status()
    return int(response.json()["total"]["lines"])


async def run(
    infra: Infra, order_capture: ServiceProcess, query_api: ServiceProcess, factory: OrderFactory, p: FreshnessParams
) -> list[Result]:
    today = datetime.now(UTC).date()
    total = int(p.events_per_second * p.seconds)
    now = datetime.now(UTC)
    orders = [factory.order(now - timedelta(seconds=30)) for _ in range(total)]
    bodies = [Body(http_body(chunk), len(chunk), lines_of(chunk)) for chunk in batches(orders, p.batch)]
    expected = sum(b.lines for b in bodies)

    polls: list[tuple[float, float, int]] = []  # (sent, answered, total lines)
    async with httpx.AsyncClient(base_url=query_api.url, headers=infra.header("analyst"), timeout=30) as client:
        base = await _national_lines(client, today)
        finished = asyncio.Event()

        async def poll() -> None:
            give_up = None
            while True:
                sent = time.monotonic()
                lines = await _national_lines(client, today)
                polls.append((sent, time.monotonic(), lines))
                if lines >= base + expected:
                    return
                if finished.is_set():
                    give_up = give_up or time.monotonic() + 120
                    if time.monotonic() > give_up:
                        return
                await asyncio.sleep(p.poll_interval)

        poller = asyncio.create_task(poll())
        load = await paced(
            order_capture.url,
            infra.header("admin"),
            bodies,
            per_second=p.events_per_second / p.batch,
            max_in_flight=p.max_in_flight,
        )
        finished.set()
        await poller

    latencies, unseen = [], 0
    cumulative = base
    for posted in sorted(load.posted, key=lambda r: r.answered):
        cumulative += posted.lines
        seen = next((answered for _, answered, n in polls if answered > posted.answered and n >= cumulative), None)
        if seen is None:
            unseen += 1
        else:
            latencies.append(seen - posted.answered)
    achieved = load.accepted_events / load.seconds
    poll_seconds = [answered - sent for sent, answered, _ in polls]
    details = {
        "requested_events_per_s": p.events_per_second,
        "achieved_events_per_s": round(achieved, 1),
        "seconds": round(load.seconds, 2),
        "batches": len(load.posted),
        "batches_never_visible": unseen,
        "failures": len(load.failures),
        "first_failures": load.failures[:3],
        "accept_to_visible": latency_summary_ms(latencies),
        "post_latency": latency_summary_ms([r.answered - r.sent for r in load.posted]),
        "get_sales_latency": latency_summary_ms(poll_seconds),
        "poll_interval_ms": p.poll_interval * 1000,
    }
    p99 = percentile(latencies, 99) * 1000 if latencies and not unseen else float("inf")
    p50 = percentile(latencies, 50) * 1000 if latencies else float("inf")
    floor = percentile(poll_seconds, 99) * 1000
    return [
        Result("3 freshness", "accept -> visible p50", p50, "ms", "GET /v1/sales answer p99", floor, None, details),
        Result("3 freshness", "accept -> visible p99", p99, "ms", "GET /v1/sales answer p99", floor, TARGET),
        Result(
            "3 freshness",
            "load sustained",
            achieved,
            "events/s",
            "requested rate",
            float(p.events_per_second),
            Target(">= 98% of requested", min_ratio=0.98),
        ),
    ]
