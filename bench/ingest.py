"""Scenario 1, ingest: order lines/s accepted through POST /v1/events (batches of 100 events), driven by wrk
(bench/wrk_load.py), against two baselines fed the same bodies by the same generator:

- bare-durable (bench/bare_durable_app.py): parse, then the idempotency and outbox INSERTs of the same events into
  tables of order-capture's own migrations; no validation. The ratio target is against this one;
- bare parse (bench/bare_app.py): parse and answer; the ceiling of the HTTP stack alone.

Accepted lines are counted from the database afterwards (the outbox rows of the posted event ids), not from the
answers; the answers are checked too (no failed POST, every event accepted)."""

import sys
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from bench.data import OrderFactory, batches, http_body, lines_of
from bench.http_load import Body, LoadReport, closed_loop
from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms
from bench.wrk_load import WrkReport, post_once
from order_capture.main import MIGRATIONS as ORDER_CAPTURE_MIGRATIONS
from sellthrough_devstack.processes import free_port, port_open, spawn, stop_pid, wait_until
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.db import migrate

TARGET = Target(">= 50,000 lines/s and >= 50% of bare-durable", min_value=50_000, min_ratio=0.5)
WARM_UP_BODIES = 20
DURABLE_SCHEMA = "bench_durable"
_ACCEPTED_IDS = "SELECT event_id FROM {schema}.outbox WHERE event_id = ANY($1::uuid[])"


@dataclass(frozen=True)
class IngestParams:
    events: int
    batch: int
    clients: int
    max_seconds: float
    bare_seconds: float


@dataclass(frozen=True)
class Posting:
    """The request bodies, and each posted event's order lines (to count what the database accepted)."""

    warm_up: list[Body]
    timed: list[Body]
    lines_by_id: dict[uuid.UUID, int]

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.timed)

    @property
    def events(self) -> int:
        return sum(b.events for b in self.timed)


def build_posting(factory: OrderFactory, today: date, events: int, batch: int, warm_up: int) -> Posting:
    """`warm_up` bodies, then the timed ones; each endpoint gets its own copy of the same ids' events."""
    orders = [factory.past_order(today, 90, 31) for _ in range(events + warm_up * batch)]
    bodies = [Body(http_body(chunk), len(chunk), lines_of(chunk)) for chunk in batches(orders, batch)]
    timed = orders[warm_up * batch :]
    lines_by_id = {uuid.UUID(o["event_id"]): len(o["payload"]["lines"]) for o in timed}
    return Posting(bodies[:warm_up], bodies[warm_up:], lines_by_id)


async def accepted_lines(database_url: str, schema: str, posting: Posting) -> tuple[int, int]:
    """(events, lines) of the posting found queued in `schema`'s outbox: what was durably accepted."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(_ACCEPTED_IDS.format(schema=schema), list(posting.lines_by_id))
    finally:
        await conn.close()
    return len(rows), sum(posting.lines_by_id[r["event_id"]] for r in rows)


async def _drive(url: str, authorization: str, posting: Posting, clients: int, max_seconds: float) -> WrkReport:
    await post_once(url, authorization, posting.warm_up, connections=clients, max_seconds=60)
    return await post_once(url, authorization, posting.timed, connections=clients, max_seconds=max_seconds)


def _spawn_app(infra: Infra, module: str, label: str, env: dict[str, str]) -> tuple[str, Any]:
    port = free_port()
    log_file = infra.work_dir / f"{label.replace(' ', '-')}.log"
    process = spawn([sys.executable, "-m", module], log_file, {"SELLTHROUGH_HTTP_PORT": str(port), **env})
    infra.memory.watch(label, process.pid)
    wait_until(lambda: port_open(port), 60, label, log_file)
    return f"http://127.0.0.1:{port}", process


def _stop_app(infra: Infra, label: str, process: Any) -> None:
    infra.memory.unwatch(label)
    stop_pid(process.pid)
    process.wait(timeout=10)


async def bare_parse(infra: Infra, posting: Posting, p: IngestParams) -> WrkReport:
    url, process = _spawn_app(infra, "bench.bare_app", "bare endpoint", {})
    try:
        return await _drive(url, "", posting, p.clients, p.max_seconds)
    finally:
        _stop_app(infra, "bare endpoint", process)


async def bare_durable(infra: Infra, database_url: str, posting: Posting, p: IngestParams) -> tuple[WrkReport, int]:
    """The bare-durable run and the lines it durably accepted (from its outbox)."""
    await migrate(database_url, DURABLE_SCHEMA, Path(ORDER_CAPTURE_MIGRATIONS))
    env = {"DATABASE_URL": database_url, "BENCH_DURABLE_SCHEMA": DURABLE_SCHEMA}
    url, process = _spawn_app(infra, "bench.bare_durable_app", "bare-durable endpoint", env)
    try:
        report = await _drive(url, "", posting, p.clients, p.max_seconds)
    finally:
        _stop_app(infra, "bare-durable endpoint", process)
    _, lines = await accepted_lines(database_url, DURABLE_SCHEMA, posting)
    return report, lines


async def run(
    infra: Infra,
    order_capture: ServiceProcess,
    database_url: str,
    factory: OrderFactory,
    today: date,
    p: IngestParams,
) -> list[Result]:
    posting = build_posting(factory, today, p.events, p.batch, WARM_UP_BODIES)
    parse = await bare_parse(infra, posting, p)
    durable, durable_lines = await bare_durable(infra, database_url, posting, p)
    real = await _drive(order_capture.url, infra.header("admin")["Authorization"], posting, p.clients, p.max_seconds)
    events, lines = await accepted_lines(database_url, "order_capture", posting)

    rate, durable_rate = lines / real.seconds, durable_lines / durable.seconds
    parse_lines = posting.lines if parse.posts_ok == len(posting.timed) else 0
    details = {
        "generator": "wrk (bench/wrk/bodies.lua), each body posted once",
        "events_posted": posting.events,
        "lines_posted": posting.lines,
        "events_accepted_in_database": events,
        "lines_accepted_in_database": lines,
        "order_capture": real.as_json(),
        "bare_durable": {**durable.as_json(), "lines_accepted_in_database": durable_lines},
        "bare_parse": parse.as_json(),
    }
    checks = {
        "no_failed_post": real.failures == 0,
        "every_event_accepted": events == posting.events and real.events_accepted == posting.events,
        "baseline_every_event_accepted": durable_lines == posting.lines and durable.failures == 0,
    }
    return [
        Result(
            "1 ingest",
            "order lines/s accepted",
            rate,
            "lines/s",
            "bare-durable (parse + idempotency + outbox)",
            durable_rate,
            TARGET,
            details,
            checks,
        ),
        Result(
            "1 ingest",
            "bare-durable endpoint",
            durable_rate,
            "lines/s",
            "bare parse endpoint",
            parse_lines / parse.seconds,
        ),
    ]


async def bare_endpoint(infra: Infra, bodies: list[Body], clients: int, seconds: float) -> LoadReport:
    """The bodies posted to the bare endpoint (bench/bare_app.py) by `clients` httpx clients for `seconds`, cycling:
    the field and location scenarios' reference (they compare httpx-driven runs with each other)."""
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
