"""Focused cost of query-api's projection consumer alone (round 4, docs/benchmarks.md): ORDERS orders produced
once onto the trade topic of a Tansu broker of its own, then consumed by the real ExactlyOnceConsumer with
query-api's handler and its sales fold job running, into a fresh schema per run of a durable embedded
PostgreSQL (fsync on), timed from the consumer's start until its processed ids cover every order. Runs alternate
between the modes given, so an A/B shares the machine's load:

- `durable`: synchronous commit, one transaction a batch (query-api before round 4);
- `async`: synchronous commit off in the consumer's and the fold's transactions, one transaction a batch;
- `async-parallel`: as `async`, each batch applied in 2 transactions of whole partitions at once (the default now).

    python -m bench.consumer_path --orders 20000 --rounds 2 --modes durable,async-parallel
"""

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.data import OrderFactory, accepted, brand, kafka_record
from query_api.main import MIGRATIONS
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.projections.sales_fold import fold_job
from query_api.settings import QueryApiSettings
from sellthrough_contracts import encode_event
from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.kafka import ensure_topics, make_producer

_APPLIED = "SELECT count(*) FROM processed_events WHERE group_id = $1"
# Lines still queued for a fold: sales_lines_unfolded, and (since round 5) the running totals' queue where it exists.
_QUEUED = "SELECT EXISTS (SELECT FROM sales_lines_unfolded)"
_QUEUED_BOTH = _QUEUED + " OR EXISTS (SELECT FROM sales_outlet_running_unfolded)"
_HAS_RUNNING_QUEUE = "SELECT to_regclass('sales_outlet_running_unfolded') IS NOT NULL"
MODES = {"durable": (True, 1), "async": (False, 1), "async-parallel": (False, 2)}
"""Mode -> (synchronous commit, transactions a batch)."""


async def _produce(bootstrap: str, orders: int) -> tuple[int, list[ConsumerRecord[bytes, bytes]]]:
    """The orders on the trade topic; the reference data as records to apply directly."""
    masters = brand(7)
    now = datetime.now(UTC)
    reference = [
        ConsumerRecord("reference", 0, i, 0, 0, b"k", encode_event(accepted(e, now)), None, 1, 1, [])
        for i, e in enumerate(masters.reference)
    ]
    factory = OrderFactory(masters, random.Random(7))
    producer = make_producer(bootstrap, "consumer-path")
    await producer.start()
    try:
        sent = []
        for _ in range(orders):
            topic, key, value, headers = kafka_record(accepted(factory.past_order(date.today(), 30, 2), now))
            sent.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return orders, reference


def _cpu_seconds(postgres: EmbeddedPostgres) -> dict[int, float]:
    """CPU seconds (user + system) so far of this process and of every process of the server, by pid."""
    postmaster = psutil.Process(int((postgres.data_dir / "postmaster.pid").read_text().split()[0]))
    seconds = {}
    for process in [psutil.Process(os.getpid()), postmaster, *postmaster.children()]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


async def _run(
    postgres: EmbeddedPostgres,
    bootstrap: str,
    schema: str,
    mode: str,
    orders: int,
    reference: list[ConsumerRecord[bytes, bytes]],
) -> float:
    url = postgres.url
    synchronous, parallel = MODES[mode]
    await migrate(url, schema, MIGRATIONS)
    pool = await create_pool(url, schema)
    handler = projection_handler(QueryApiSettings())
    try:
        await BatchApplier(pool=pool, group_id="reference", handler=handler, wanted_types=PROJECTION_TYPES).apply_batch(
            reference
        )
        consumer = ExactlyOnceConsumer(
            pool=pool,
            consumer=AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=schema,
                client_id=schema,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            ),
            group_id=schema,
            topics=["sellthrough.trade.v1"],
            handler=handler,
            wanted_types=PROJECTION_TYPES,
            synchronous_commit=synchronous,
            parallel_transactions=parallel,
        )
        cpu_before = _cpu_seconds(postgres)
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(consumer.run()),
            asyncio.ensure_future(fold_job(pool, 0.2, 50_000, synchronous_commit=synchronous)()),
        ]
        first: float | None = None
        try:
            while (done := await pool.fetchval(_APPLIED, schema)) < orders:
                if tasks[0].done():
                    raise RuntimeError(f"consumer stopped: {tasks[0].exception()!r}")
                if first is None and done:
                    first = time.perf_counter()
                await asyncio.sleep(0.02)
            ended = time.perf_counter()
            # Timed from the first batch applied: joining the group takes Tansu seconds, the same in every mode.
            seconds = ended - (first or started)
            cpu_applied = _cpu_seconds(postgres)
            # The fold job's work is part of each event's cost too: CPU is also counted until its queues are empty.
            queued = _QUEUED_BOTH if await pool.fetchval(_HAS_RUNNING_QUEUE) else _QUEUED
            while await pool.fetchval(queued):  # noqa: ASYNC110 (polling the database: no event to wait on)
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        cpu_after = _cpu_seconds(postgres)  # before the pool closes: its backends' time goes with them
        cpu = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_applied.items())
        cpu_folded = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items())
        lines = await pool.fetchval("SELECT sum(lines) FROM sales_lines")
        print(
            f"{mode:15s} {orders / seconds:8.0f} events/s ({seconds:.2f} s from the first batch, "
            f"{ended - started:.2f} s from the start, {lines} lines); CPU {cpu / orders * 1e6:.0f} us/event "
            f"(this process and PostgreSQL, from the start), {cpu_folded / orders * 1e6:.0f} us/event with the "
            "fold's queues emptied",
            flush=True,
        )
        return orders / seconds
    finally:
        await pool.close()


def _directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="consumer-path-"))
    directory.chmod(0o755)  # as root the server runs as another user, who must reach its data directory
    return directory


async def main(orders: int, rounds: int, modes: list[str]) -> None:
    directory = _directory()
    postgres = EmbeddedPostgres(directory / "data", free_port())
    broker = EmbeddedBroker(free_port(), directory / "tansu.log")
    postgres.start()
    broker.start()
    try:
        await ensure_topics(broker.bootstrap_servers)
        count, reference = await _produce(broker.bootstrap_servers, orders)
        for round_ in range(rounds):
            for mode in modes:
                await _run(
                    postgres,
                    broker.bootstrap_servers,
                    f"cost_{round_}_{mode.replace('-', '_')}",
                    mode,
                    count,
                    reference,
                )
    finally:
        broker.stop()
        postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="durable,async,async-parallel")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.rounds, arguments.modes.split(",")))
