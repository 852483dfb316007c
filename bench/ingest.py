"""Scenario 1, ingest: order lines/s accepted through POST /v1/events (batches of 100 events, concurrent
clients) vs a bare FastAPI endpoint that parses the same bodies and returns."""

import sys
from dataclasses import dataclass
from datetime import date

from rich.progress import Progress

from bench.data import OrderFactory, batches, http_body, lines_of
from bench.http_load import Body, LoadReport, closed_loop
from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms
from sellthrough_devstack.processes import free_port, port_open, spawn, stop_pid, wait_until
from sellthrough_devstack.services import ServiceProcess

TARGET = Target(">= 20,000 lines/s and >= 50% of bare", min_value=20_000, min_ratio=0.5)
WARM_UP_BODIES = 20


@dataclass(frozen=True)
class IngestParams:
    events: int
    batch: int
    clients: int
    max_seconds: float
    bare_seconds: float


def build_bodies(factory: OrderFactory, today: date, events: int, batch: int) -> list[Body]:
    orders = [factory.past_order(today, 90, 31) for _ in range(events)]
    return [Body(http_body(chunk), len(chunk), lines_of(chunk)) for chunk in batches(orders, batch)]


async def run(
    infra: Infra, order_capture: ServiceProcess, factory: OrderFactory, today: date, p: IngestParams
) -> list[Result]:
    bodies = build_bodies(factory, today, p.events + WARM_UP_BODIES * p.batch, p.batch)
    warm_up, timed = bodies[:WARM_UP_BODIES], bodies[WARM_UP_BODIES:]
    bare = await bare_endpoint(infra, bodies, p.clients, p.bare_seconds)

    await closed_loop(order_capture.url, infra.header("admin"), warm_up, clients=p.clients, seconds=60)
    with Progress() as progress:
        task = progress.add_task("ingest: POST /v1/events", total=sum(b.lines for b in timed))
        real = await closed_loop(
            order_capture.url,
            infra.header("admin"),
            timed,
            clients=p.clients,
            seconds=p.max_seconds,
            progress=lambda lines: progress.advance(task, lines),
        )
    return [
        Result(
            "1 ingest",
            "order lines/s accepted",
            real.accepted_lines / real.seconds,
            "lines/s",
            "bare FastAPI endpoint",
            bare.accepted_lines / bare.seconds,
            TARGET,
            {"order_capture": describe(real), "bare_endpoint": describe(bare)},
            {
                "no_failed_post": not real.failures,
                "every_event_accepted": all(p.accepted_events == p.events for p in real.posted),
            },
        )
    ]


async def bare_endpoint(infra: Infra, bodies: list[Body], clients: int, seconds: float) -> LoadReport:
    """The bodies posted to the bare endpoint (bench/bare_app.py) by `clients` clients for `seconds`, cycling."""
    port = free_port()
    log_file = infra.work_dir / "bare-endpoint.log"
    process = spawn([sys.executable, "-m", "bench.bare_app"], log_file, {"SELLTHROUGH_HTTP_PORT": str(port)})
    infra.memory.watch("bare endpoint", process.pid)
    try:
        wait_until(lambda: port_open(port), 30, "bare endpoint", log_file)
        url = f"http://127.0.0.1:{port}"
        await closed_loop(url, {}, bodies[:WARM_UP_BODIES], clients=clients, seconds=60)
        return await closed_loop(url, {}, bodies, clients=clients, seconds=seconds, cycle=True)
    finally:
        infra.memory.unwatch("bare endpoint")
        stop_pid(process.pid)
        process.wait(timeout=10)


def describe(report: LoadReport) -> dict[str, object]:
    return {
        "seconds": round(report.seconds, 3),
        "requests": len(report.posted),
        "events_accepted": report.accepted_events,
        "lines_accepted": report.accepted_lines,
        "events_per_s": round(report.accepted_events / report.seconds, 1),
        "request_latency": latency_summary_ms([r.answered - r.sent for r in report.posted]),
        "failures": len(report.failures),
        "first_failures": report.failures[:3],
    }
