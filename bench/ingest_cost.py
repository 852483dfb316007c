"""The ingest path's cost per batch, without HTTP or load from other processes: order-capture's `accept_batch` over
the bench's 100-order bodies, through the real store (adapters/store.PgBatchStore) against an embedded PostgreSQL,
one batch at a time. Reports, per batch, the client process's CPU, the PostgreSQL backend's CPU (from /proc),
the statements sent and the wall time; and the bare-durable baseline's work (bench/bare_durable_app.py: parse,
idempotency and outbox INSERTs) on the same bodies, so the two can be compared on a shared machine, where wall
rates move with other work but CPU per batch much less.

    python -m bench.ingest_cost [--batches 60] [--profile] [--no-masters-cache]
    (--profile: cProfile of the order-capture side; --no-masters-cache: masters read once per batch, as
    SELLTHROUGH_MASTERS_CACHE=false does; otherwise the worker's copy, which its first batch fills whole)
"""

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import bare_durable_app
from bench.data import OrderFactory, batches, brand, http_body
from order_capture.adapters.masters import apply_reference_events
from order_capture.adapters.masters_cache import MastersCache
from order_capture.adapters.store import PgBatchStore
from order_capture.handlers.accept_batch import accept_batch
from order_capture.main import MIGRATIONS, SCHEMA
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import parse_event
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port
from sellthrough_runtime.app import long_running_gc
from sellthrough_runtime.auth import Principal, Role
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.outbox import append_records_to_outbox

ADMIN = Principal(Role.ADMIN, "bench")
DURABLE = "bench_durable"


def _ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


_HZ = os.sysconf("SC_CLK_TCK")
_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
"""Every client's backend of this private server: both pools' (one connection each)."""


async def _measure(
    pool: asyncpg.Pool, bodies: list[bytes], step: Callable[[asyncpg.Pool, bytes], Awaitable[None]]
) -> dict[str, float]:
    """Per-batch averages of `step` over `bodies`: client CPU, the backends' CPU, wall time (ms)."""
    backends = [r["pid"] for r in await pool.fetch(_BACKENDS)]
    server_before = sum(_ticks(pid) for pid in backends)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for body in bodies:
        await step(pool, body)
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    server = (sum(_ticks(pid) for pid in backends) - server_before) / _HZ
    n = len(bodies)
    return {"client_cpu_ms": cpu / n * 1000, "server_cpu_ms": server / n * 1000, "wall_ms": wall / n * 1000}


async def _order_capture(pool: asyncpg.Pool, body: bytes) -> None:
    settings = _SETTINGS[0]
    async with PgBatchStore(pool, _MASTERS[0] if _MASTERS else None) as store:
        ingested = await accept_batch(orjson.loads(body)["events"], None, ADMIN, settings, store, datetime.now(UTC))
    assert ingested.batch.accepted == len(ingested.batch.results), ingested.batch.results[:1]
    ingested.batch.model_dump_json()  # what the route's response costs


async def _bare_durable(pool: asyncpg.Pool, body: bytes) -> None:
    events = orjson.loads(body)["events"]
    pairs = [bare_durable_app._record(e) for e in events]
    by_id = sorted(pairs, key=lambda p: p[0].event_id)
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetch(
            bare_durable_app._IDEMPOTENCY,
            [r.event_id for r, _ in by_id],
            [h for _, h in by_id],
            [r.event_type for r, _ in by_id],
        )
        new = {row["event_id"] for row in inserted}
        await append_records_to_outbox(conn, [r for r, _ in pairs if r.event_id in new])


_SETTINGS: list[OrderCaptureSettings] = []
_MASTERS: list[MastersCache] = []
_GC = {"started": 0.0, "seconds": 0.0, "collections": 0}


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    """Time spent in the cyclic garbage collector (its pauses land on whatever allocates in a profile)."""
    if phase == "start":
        _GC["started"] = time.perf_counter()
    else:
        _GC["seconds"] += time.perf_counter() - _GC["started"]
        _GC["collections"] += 1


async def main(batches_n: int, profile: bool, rounds: int, cache: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="ingest-cost-") as work:
        os.chmod(work, 0o755)
        postgres = EmbeddedPostgres(Path(work) / "pg" / "data", free_port())
        postgres.start()
        try:
            await _run(postgres.url, batches_n, profile, rounds, cache)
        finally:
            postgres.stop(mode="immediate")


async def _run(url: str, batches_n: int, profile: bool, rounds: int, cache: bool) -> None:
    await migrate(url, SCHEMA, MIGRATIONS)
    await migrate(url, DURABLE, MIGRATIONS)
    listener = None
    if cache:  # as the service keeps it (main.py): LISTENing on a connection of its own
        _MASTERS.append(MastersCache(SCHEMA))
        listener = asyncio.create_task(_MASTERS[0].listen(url))
        await asyncio.wait_for(_MASTERS[0].listening(), timeout=30)
    _SETTINGS.append(OrderCaptureSettings(database_url=url))
    masters = brand(7)
    pool = await create_pool(url, SCHEMA, min_size=1, max_size=1)
    durable = await create_pool(url, DURABLE, min_size=1, max_size=1)
    async with pool.acquire() as conn, conn.transaction():
        await apply_reference_events(conn, [parse_event(e) for e in masters.reference])
    factory = OrderFactory(masters, random.Random(11))
    today = datetime.now(UTC).date()

    def bodies(n: int) -> list[bytes]:
        orders = [factory.past_order(today, 90, 31) for _ in range(n * 100)]
        return [http_body(chunk) for chunk in batches(orders, 100)]

    for body in bodies(10):  # warm up: caches, prepared statements
        await _order_capture(pool, body)
        await _bare_durable(durable, body)
    with long_running_gc():  # the collector as the service runs it (runtime/app.py)
        for r in range(rounds):
            sample = bodies(batches_n)
            _GC.update(seconds=0.0, collections=0)
            oc = await _measure(pool, sample, _order_capture)
            collected = f"{_GC['collections']} collections, {_GC['seconds'] / batches_n * 1000:.2f} ms a batch"
            bd = await _measure(durable, sample, _bare_durable)
            client = bd["client_cpu_ms"] / oc["client_cpu_ms"]
            total = (bd["client_cpu_ms"] + bd["server_cpu_ms"]) / (oc["client_cpu_ms"] + oc["server_cpu_ms"])
            print(f"round {r}: order-capture {_fmt(oc)} (gc: {collected}) | bare-durable {_fmt(bd)}")
            print(f"  bare-durable / order-capture CPU per batch: client {client:.2f}, client + server {total:.2f}")
            if _MASTERS:
                print(f"  masters read from PostgreSQL so far: {_MASTERS[0].reads} times")
        if profile:
            sample = bodies(batches_n)
            profiler = cProfile.Profile()
            profiler.enable()
            await _measure(pool, sample, _order_capture)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(70)
    if listener is not None:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    await pool.close()
    await durable.close()


def _fmt(m: dict[str, Any]) -> str:
    return f"client {m['client_cpu_ms']:.2f} ms, server {m['server_cpu_ms']:.2f} ms, wall {m['wall_ms']:.2f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-masters-cache", action="store_true")
    args = parser.parse_args()
    gc.callbacks.append(_gc_timer)
    asyncio.run(main(args.batches, args.profile, args.rounds, not args.no_masters_cache))
