"""Scenario 3, freshness: time from HTTP accept (the POST's answer) to visible in GET /v1/sales, under a steady
paced (open-loop) load. A poller reads the national total for today every `poll_interval` (open loop too: a GET
starts on schedule even while earlier ones are unanswered); a batch is visible at the answer of the first poll
whose total covers every line accepted up to and including it.

Measured at the issue's rate (5,000 events/s), then stepped up (x`step_factor` per step) to the highest rate
sustained: a step holds when >= 98% of the requested rate was achieved, every batch became visible and its p99
stayed under `p99_bound_ms`. Then measured again at half that highest rate."""

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.data import OrderFactory, batches, http_body, lines_of
from bench.freshness_stages import Batch, stages
from bench.http_load import Body, paced
from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms, percentile
from sellthrough_devstack.services import ServiceProcess

TARGET = Target("p99 < 300 ms", max_value=300)
SUSTAINED = 0.98


@dataclass(frozen=True)
class FreshnessParams:
    events_per_second: int
    seconds: float
    batch: int
    max_in_flight: int = 32
    poll_interval: float = 0.05
    max_polls_in_flight: int = 4
    step_seconds: float = 10
    step_factor: float = 1.5
    max_steps: int = 6
    p99_bound_ms: float = 1000


@dataclass(frozen=True)
class Step:
    requested: float
    achieved: float
    latencies: list[float]
    unseen: int
    failures: int
    details: dict[str, Any]

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000 if self.latencies else float("inf")

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000 if self.latencies and not self.unseen else float("inf")

    def held(self, bound_ms: float) -> bool:
        return self.achieved >= SUSTAINED * self.requested and not self.failures and self.p99_ms < bound_ms


async def _national_lines(client: httpx.AsyncClient, today: date) -> int:
    params = {"level": "national", "from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    response = await client.get("/v1/sales", params=params)
    response.raise_for_status()
    return int(response.json()["total"]["lines"])


async def measure(
    infra: Infra,
    order_capture: ServiceProcess,
    query_api: ServiceProcess,
    factory: OrderFactory,
    p: FreshnessParams,
    rate: float,
    seconds: float,
    traced: bool = False,
) -> Step:
    """`rate` events/s posted for `seconds` (new events), each batch's accept -> visible latency; `traced`: with
    where that latency went, stage by stage (freshness_stages.py), in the details."""
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    orders = [factory.order(now - timedelta(seconds=30)) for _ in range(int(rate * seconds))]
    chunks = list(batches(orders, p.batch))
    bodies = [Body(http_body(chunk), len(chunk), lines_of(chunk)) for chunk in chunks]
    expected = sum(b.lines for b in bodies)

    polls: list[tuple[float, float, int]] = []  # (sent, answered, total lines)
    async with httpx.AsyncClient(base_url=query_api.url, headers=infra.header("analyst"), timeout=30) as client:
        base = await _national_lines(client, today)
        finished = asyncio.Event()
        seen_all = asyncio.Event()
        slots = asyncio.Semaphore(p.max_polls_in_flight)

        async def one_poll() -> None:
            try:
                sent = time.monotonic()
                lines = await _national_lines(client, today)
                polls.append((sent, time.monotonic(), lines))
                if lines >= base + expected:
                    seen_all.set()
            finally:
                slots.release()

        async def poll() -> None:
            """Open loop, as the load: a GET starts every `poll_interval` whatever the earlier ones' answer times
            (up to `max_polls_in_flight` at once), so a slow answer does not coarsen the resolution to the GET's
            time plus the interval, as waiting for each answer before the next interval did."""
            started, tick, give_up = time.monotonic(), 0, None
            polling: set[asyncio.Task[None]] = set()
            while not seen_all.is_set():
                if finished.is_set():
                    give_up = give_up or time.monotonic() + 120
                    if time.monotonic() > give_up:
                        break
                if not slots.locked():
                    await slots.acquire()
                    task = asyncio.create_task(one_poll())
                    polling.add(task)
                    task.add_done_callback(polling.discard)
                tick += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen_all.wait(), max(started + tick * p.poll_interval - time.monotonic(), 0))
            await asyncio.gather(*polling)

        poller = asyncio.create_task(poll())
        load = await paced(
            order_capture.url,
            infra.header("admin"),
            bodies,
            per_second=rate / p.batch,
            max_in_flight=p.max_in_flight,
        )
        finished.set()
        await poller

    latencies, unseen = [], 0
    cumulative = base
    traced_batches = []
    wall = time.time() - time.monotonic()
    for posted in sorted(load.posted, key=lambda r: r.answered):
        cumulative += posted.lines
        seen = next((answered for _, answered, n in polls if answered > posted.answered and n >= cumulative), None)
        if seen is None:
            unseen += 1
        else:
            latencies.append(seen - posted.answered)
        ids = [e["event_id"] for e in chunks[posted.index]]
        traced_batches.append(Batch(ids, posted.answered + wall, None if seen is None else seen + wall))
    achieved = load.accepted_events / load.seconds
    details = {
        "requested_events_per_s": round(rate, 1),
        "achieved_events_per_s": round(achieved, 1),
        "seconds": round(load.seconds, 2),
        "batches": len(load.posted),
        "batches_never_visible": unseen,
        "failures": len(load.failures),
        "first_failures": load.failures[:3],
        "accept_to_visible": latency_summary_ms(latencies),
        "post_latency": latency_summary_ms([r.answered - r.sent for r in load.posted]),
        "get_sales_latency": latency_summary_ms([answered - sent for sent, answered, _ in polls]),
        "poll_interval_ms": p.poll_interval * 1000,
    }
    if traced:
        try:
            details["stages"] = await stages(
                order_capture.env["DATABASE_URL"], order_capture.env["KAFKA_BOOTSTRAP_SERVERS"], traced_batches
            )
        except Exception as error:  # noqa: BLE001 - a diagnostic: the figure stands without it
            details["stages"] = {"error": repr(error)}
    return Step(rate, achieved, latencies, unseen, len(load.failures), details)


async def run(
    infra: Infra, order_capture: ServiceProcess, query_api: ServiceProcess, factory: OrderFactory, p: FreshnessParams
) -> list[Result]:
    async def at(rate: float, seconds: float, traced: bool = False) -> Step:
        return await measure(infra, order_capture, query_api, factory, p, rate, seconds, traced)

    nominal = await at(p.events_per_second, p.seconds, traced=True)
    # Stepping up from the nominal rate; when even that does not hold, down from it, to find a rate that does.
    steps: list[Step] = []
    rate = float(p.events_per_second)
    upward = nominal.held(p.p99_bound_ms)
    for _ in range(p.max_steps):
        rate = rate * p.step_factor if upward else rate / p.step_factor
        step = await at(rate, p.step_seconds)
        steps.append(step)
        if step.held(p.p99_bound_ms) != upward:
            break
    held = [s.requested for s in (nominal, *steps) if s.held(p.p99_bound_ms)]
    highest = max(held) if held else 0.0
    half = await at(highest / 2, p.seconds, traced=True) if highest else None

    checks = {
        "every_batch_visible": nominal.unseen == 0,
        "no_failed_post": nominal.failures == 0,
        "rate_sustained": nominal.achieved >= SUSTAINED * nominal.requested,
    }
    details = {
        "nominal": nominal.details,
        "steps": [s.details for s in steps],
        "highest_sustained_events_per_s": round(highest, 1),
        "half_highest": half.details if half else None,
        "p99_bound_ms": p.p99_bound_ms,
    }
    rate_name = f"at {p.events_per_second:,} events/s"
    results = [
        Result("3 freshness", f"accept -> visible p50 {rate_name}", nominal.p50_ms, "ms", details=details),
        Result("3 freshness", f"accept -> visible p99 {rate_name}", nominal.p99_ms, "ms", target=TARGET, checks=checks),
        Result(
            "3 freshness",
            f"load sustained {rate_name}",
            nominal.achieved,
            "events/s",
            "requested rate",
            float(p.events_per_second),
            Target(">= 98% of requested", min_ratio=SUSTAINED),
        ),
        Result("3 freshness", "highest sustained rate", highest, "events/s"),
    ]
    if half is not None:
        half_name = f"at half the highest ({half.requested:,.0f} events/s)"
        results += [
            Result("3 freshness", f"accept -> visible p50 {half_name}", half.p50_ms, "ms"),
            Result("3 freshness", f"accept -> visible p99 {half_name}", half.p99_ms, "ms"),
        ]
    return results
