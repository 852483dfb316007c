"""Scenario 6, field client: the load is a field force's phones. The simulator (`sellthrough-field`) captures N reps
x D days into one SQLite queue per phone, every phone out of coverage; then the phones come back and sync at once,
each with its own device-bound token and the client's own batching (`Syncer`), `clients` phones at a time. Order
lines accepted per second vs the bare endpoint fed the very bodies the phones sent (and, in details, vs scenario 1
when it ran in the same run)."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.progress import Progress
from sellthrough_field.queue import EventQueue, Queued
from sellthrough_field.reference import world_from
from sellthrough_field.simulate import Plan, Simulation
from sellthrough_field.sync import Limits, Syncer, batches, client_for

from bench.http_load import Body
from bench.infra import Infra
from bench.ingest import bare_endpoint, describe
from bench.location import drained
from bench.results import Result
from sellthrough_devstack.services import ServiceProcess


@dataclass(frozen=True)
class FieldParams:
    reps: int
    days: int
    batch: int
    """The phones' batch limit (events per request): a phone sends at most this many at once."""
    clients: int
    """Phones syncing at the same time."""
    bare_seconds: float


@dataclass
class PhoneResult:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def rep_ids(reference: list[dict[str, Any]]) -> list[str]:
    return sorted({e["payload"]["rep_id"] for e in reference if e["event_type"] == "RepRegistered"})


def capture(out: Path, reference: list[dict[str, Any]], p: FieldParams, end: date, seed: int) -> int:
    """Run the simulator with no URL: every phone keeps its days queued. Returns the orders captured."""
    plan = Plan(reps=p.reps, days=p.days, end=end, seed=seed, batch_events=p.batch)
    return len(Simulation(world_from(reference), plan, out, None, {}).run().orders)


def _lines(body: str) -> int:
    event = json.loads(body)
    return len(event["payload"]["lines"]) if event.get("event_type") == "OrderCaptured" else 0


def phone_bodies(queues: list[Path], batch: int) -> list[Body]:
    """The requests the phones will send, as Syncer builds them (without device_time): the bare baseline's load."""
    bodies = []
    for path in queues:
        with EventQueue(path) as queue:
            rows: list[Queued] = queue.pending(1_000_000)
        for chunk in batches(rows, Limits(max_events=batch)):
            content = b'{"events":[' + b",".join(r.body.encode() for r in chunk) + b"]}"
            bodies.append(Body(content, len(chunk), sum(_lines(r.body) for r in chunk)))
    return bodies


def sync_phone(path: Path, url: str, tokens: dict[str, str], batch: int) -> PhoneResult:
    result = PhoneResult()
    with EventQueue(path) as queue:
        actor = queue.meta("actor") or ""
        with client_for(url, tokens[actor]) as client:
            report = Syncer(queue, client, limits=Limits(max_events=batch)).sync()
        result.accepted, result.duplicate, result.rejected = report.accepted, report.duplicate, report.rejected
        result.requests, result.retries, result.reasons = report.requests, report.retries, report.reasons
        result.lines = sum(
            _lines(body)
            for event_id, (_, outcome) in queue.states().items()
            if outcome == "accepted" and (body := queue.body_of(event_id))
        )
    return result


def sync_all(queues: list[Path], url: str, tokens: dict[str, str], p: FieldParams, progress: Progress) -> Any:
    task = progress.add_task("field client: phones syncing", total=len(queues))
    results: list[PhoneResult] = []
    started = time.monotonic()
    with ThreadPoolExecutor(p.clients) as pool:
        for result in pool.map(lambda path: sync_phone(path, url, tokens, p.batch), queues):
            results.append(result)
            progress.advance(task)
    return results, time.monotonic() - started


async def run(
    infra: Infra,
    order_capture: ServiceProcess,
    database_url: str,
    reference: list[dict[str, Any]],
    today: date,
    p: FieldParams,
    seed: int,
    ingest_lines_per_s: float | None,
) -> list[Result]:
    out = infra.work_dir / "field"
    orders = await asyncio.to_thread(capture, out, reference, p, today - timedelta(days=1), seed)
    queues = sorted(out.glob("*.sqlite"))
    bodies = phone_bodies(queues, p.batch)
    tokens = infra.device_tokens()
    await drained(database_url)
    with Progress() as progress:
        results, seconds = await asyncio.to_thread(sync_all, queues, order_capture.url, tokens, p, progress)
    bare = await bare_endpoint(infra, bodies, p.clients, p.bare_seconds)
    lines = sum(r.lines for r in results)
    accepted = sum(r.accepted for r in results)
    requests = sum(r.requests for r in results)
    rejected = sum(r.rejected for r in results)
    reasons: dict[str, int] = {}
    for r in results:
        for reason, count in r.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    value = lines / seconds
    details: dict[str, Any] = {
        "reps": p.reps,
        "days": p.days,
        "phones": len(queues),
        "orders_captured": orders,
        # Everything the phones held: orders, and whatever else the simulator captures (visits, attendance...).
        "events_queued": sum(b.events for b in bodies),
        "lines_queued": sum(b.lines for b in bodies),
        "events_accepted": accepted,
        "events_rejected": rejected,
        "rejection_reasons": reasons,
        "lines_accepted": lines,
        "seconds": round(seconds, 3),
        "events_per_s": round(accepted / seconds, 1),
        "requests": requests,
        "retries": sum(r.retries for r in results),
        "mean_events_per_request": round(accepted / requests, 1) if requests else None,
        "bare_endpoint": describe(bare),
    }
    if ingest_lines_per_s:
        details["vs_ingest_scenario"] = {"ingest_lines_per_s": ingest_lines_per_s, "ratio": value / ingest_lines_per_s}
    return [
        Result(
            "6 field client",
            f"order lines/s accepted from {len(queues)} phones' queues (simulator, {p.reps} reps x {p.days} days)",
            value,
            "lines/s",
            "bare FastAPI endpoint, same bodies",
            bare.accepted_lines / bare.seconds,
            None,
            details,
        )
    ]
