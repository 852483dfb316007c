"""The benchmark run: infrastructure, the live stack (order-capture + query-api) for pipeline, freshness and
ingest, then a fresh broker and database for rebuild and queries. A scenario that fails is recorded as an
error and the others still run."""

import asyncio
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from bench import field_load, freshness, ingest, location, pipeline, queries, query_data, rebuild, scaleout
from bench.data import BRAND_OUTLETS, OrderFactory, brand
from bench.infra import Infra
from bench.memory import PeakMemory
from bench.projection import wait_until_applied
from bench.results import Result
from sellthrough_contracts.topics import REFERENCE
from sellthrough_devstack.demo import post_all, wait_for_masters
from sellthrough_devstack.services import ServiceProcess

SCENARIOS = (
    "pipeline",
    "freshness",
    "ingest",
    "field",
    "location",
    "rebuild",
    "rebuild_command",
    "queries",
    "scaleout",
)
LIVE = {"pipeline", "freshness", "ingest", "field", "location"}


@dataclass(frozen=True)
class BenchParams:
    order_lines: int
    ingest: ingest.IngestParams
    pipeline_events: int
    freshness: freshness.FreshnessParams
    query_requests: int
    field: field_load.FieldParams
    location: location.LocationParams
    scaleout: scaleout.ScaleoutParams
    query_seconds: float = 240
    query_lines: int = 0
    """Lines the queries scenario runs over, loaded by bench/query_data.py into a database of its own; 0: the
    rebuild's projection (order_lines)."""
    fast_unsafe: bool = False
    seed: int = 7
    outlets: int = BRAND_OUTLETS
    """The brand's outlets (bench/data.py brand)."""
    scenarios: tuple[str, ...] = SCENARIOS

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)


async def _scenario(run: Run, console: Console, name: str, body: Callable[[], Awaitable[list[Result]]]) -> None:
    console.rule(f"[bold]{name}")
    try:
        run.results += await body()
    except Exception as error:  # noqa: BLE001 - recorded in results.json; the other scenarios still run
        console.print(f"[red]{name} failed: {error!r}")
        run.errors.append(f"{name}: {error!r}\n{traceback.format_exc()}")


async def _live_stack(infra: Infra, p: BenchParams, run: Run, console: Console) -> None:
    masters = brand(p.seed, p.outlets)
    factory = OrderFactory(masters, random.Random(p.seed))
    today = datetime.now(UTC).date()
    database_url = await infra.create_database("live")
    bootstrap = await infra.broker("live")
    order_capture, query_api = infra.start_services(
        [("order-capture", "live"), ("query-api", "live")], database_url, bootstrap
    )
    token = infra.tokens["admin"].token
    await asyncio.to_thread(post_all, order_capture.url, token, masters.reference, "reference data")
    await asyncio.to_thread(wait_for_masters, order_capture.url, token, masters.reference)
    await wait_until_applied(database_url, REFERENCE.name, len(masters.reference), "query-api: reference", timeout=300)

    if "pipeline" in p.scenarios:
        await _scenario(
            run,
            console,
            "2 pipeline",
            lambda: pipeline.run(database_url, bootstrap, factory, today, p.pipeline_events),
        )
    if "freshness" in p.scenarios:
        await _scenario(
            run, console, "3 freshness", lambda: freshness.run(infra, order_capture, query_api, factory, p.freshness)
        )
    # Ingest runs alone: on 2 cores a projection catching up would take CPU from order-capture.
    infra.stop_service(query_api)
    if "ingest" in p.scenarios:
        await _scenario(
            run, console, "1 ingest", lambda: ingest.run(infra, order_capture, database_url, factory, today, p.ingest)
        )
    ingested = next((r.value for r in run.results if r.scenario == "1 ingest"), None)
    if "field" in p.scenarios:
        await _scenario(
            run,
            console,
            "6 field client",
            lambda: field_load.run(
                infra, order_capture, database_url, masters.reference, today, p.field, p.seed, ingested
            ),
        )
    if "location" in p.scenarios:
        await _scenario(
            run,
            console,
            "7 location",
            lambda: location.run(
                infra, order_capture, database_url, bootstrap, factory, masters.reference, today, p.location
            ),
        )
    infra.stop_service(order_capture)


async def _rebuilt_stack(infra: Infra, p: BenchParams, run: Run, console: Console) -> None:
    masters = brand(p.seed, p.outlets)
    factory = OrderFactory(masters, random.Random(p.seed + 1))
    today = datetime.now(UTC).date()
    database_url = await infra.create_database("rebuild")
    rebuilt: list[ServiceProcess] = []

    async def do_rebuild() -> list[Result]:
        bootstrap = await infra.broker("rebuild")
        results, query_api = await rebuild.run(
            infra,
            database_url,
            bootstrap,
            masters.reference,
            factory,
            today,
            p.order_lines,
            command="rebuild_command" in p.scenarios,
        )
        rebuilt.append(query_api)
        return results

    if "rebuild" in p.scenarios or not p.query_lines:
        await _scenario(run, console, "4 rebuild", do_rebuild)
    if "queries" in p.scenarios and p.query_lines:

        async def do_queries_at_scale() -> list[Result]:
            url = await infra.create_database("queries")
            await query_data.load(url, p.query_lines, p.seed, today)
            service = infra.start_service("query-api", "queries", url, await infra.broker("queries"))
            return await queries.run(infra, service, url, today, p.query_requests, p.seed, p.query_seconds)

        await _scenario(run, console, "5 queries", do_queries_at_scale)
    elif "queries" in p.scenarios and rebuilt:
        await _scenario(
            run,
            console,
            "5 queries",
            lambda: queries.run(infra, rebuilt[0], database_url, today, p.query_requests, p.seed, p.query_seconds),
        )


async def run_all(p: BenchParams, console: Console) -> Run:
    run = Run()
    with PeakMemory() as memory:
        # The field scenario's phones each need a token bound to them, in the tokens file the services read.
        phones = field_load.rep_ids(brand(p.seed, p.outlets).reference) if "field" in p.scenarios else []
        infra = await asyncio.to_thread(Infra.start, memory, fast_unsafe=p.fast_unsafe, device_reps=phones)
        try:
            if LIVE & set(p.scenarios):
                await _live_stack(infra, p, run, console)
            if {"rebuild", "rebuild_command", "queries"} & set(p.scenarios):
                await _rebuilt_stack(infra, p, run, console)
            if "scaleout" in p.scenarios:
                # Last and on stacks of its own: the other scenarios' services are stopped by then.
                masters = brand(p.seed, p.outlets)
                factory = OrderFactory(masters, random.Random(p.seed + 2))
                today = datetime.now(UTC).date()
                await _scenario(
                    run,
                    console,
                    "8 scale-out",
                    lambda: scaleout.run(infra, masters.reference, factory, today, p.scaleout),
                )
        except Exception as error:  # noqa: BLE001 - a broken stack is reported with what was measured so far
            console.print(f"[red]benchmark stack failed: {error!r}")
            run.errors.append(f"stack: {error!r}\n{traceback.format_exc()}")
        finally:
            run.memory = memory.peaks_mib()
            infra.close()
    return run
