"""Scenario 4, rebuild: replay the whole trade topic into an empty projection.

`order_lines` lines of OrderCaptured events are generated and produced straight onto a fresh broker's
trade topic (encoded with the contracts' encode_event, as the relay would publish them), the reference data
onto its reference topic. Then query-api starts on an empty database, and the time until its projection has
applied every record is measured, against COPY of the same order lines into a plain table. A plain consumer
reading the whole topic with nothing done per record is timed too: no consumer of the topic can beat it, so its
ratio to COPY bounds what the rebuild's ratio can be on this machine."""

import csv
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.progress import Progress

from bench import baselines
from bench.data import OrderFactory, accepted, kafka_record, line_rows
from bench.infra import Infra
from bench.projection import sales_lines, wait_until_applied
from bench.results import Result, Target
from sellthrough_contracts.topics import TRADE
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.kafka import make_producer

TARGET = Target(">= 50% of raw COPY", min_ratio=0.5)
CHUNK = 5_000


@dataclass
class Generated:
    events: int
    lines: int
    rows_file: Path
    seconds: float


async def produce_reference(bootstrap_servers: str, reference: list[dict[str, Any]]) -> None:
    producer = make_producer(bootstrap_servers, client_id="bench-loader")
    await producer.start()
    try:
        now = datetime.now(UTC)
        for event in reference:
            topic, key, value, headers = kafka_record(accepted(event, now))
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def produce_orders(
    bootstrap_servers: str, factory: OrderFactory, today: date, order_lines: int, rows_file: Path
) -> Generated:
    """Orders over the last 90 days until exactly `order_lines` lines, onto the trade topic; their rows are
    written to `rows_file` (CSV) for the COPY baseline."""
    started = time.perf_counter()
    producer = make_producer(bootstrap_servers, client_id="bench-loader")
    await producer.start()
    events = lines = 0
    try:
        with rows_file.open("w", newline="") as out, Progress() as progress:
            writer = csv.writer(out)
            task = progress.add_task("rebuild: generating and producing order lines", total=order_lines)
            while lines < order_lines:
                chunk: list[dict[str, Any]] = []
                while lines < order_lines and len(chunk) < CHUNK:
                    order = factory.past_order(today, 90, 1)
                    order["payload"]["lines"] = order["payload"]["lines"][: order_lines - lines]
                    lines += len(order["payload"]["lines"])
                    chunk.append(order)
                now = datetime.now(UTC)
                deliveries = []
                for order in chunk:
                    topic, key, value, headers = kafka_record(accepted(order, now))
                    deliveries.append(await producer.send(topic, value, key=key, headers=headers))
                    writer.writerows(line_rows(order))
                for delivery in deliveries:
                    await delivery
                events += len(chunk)
                progress.update(task, completed=lines)
    finally:
        await producer.stop()
    return Generated(events, lines, rows_file, time.perf_counter() - started)


async def copy_rows(database_url: str, rows_file: Path) -> float:
    """Seconds to COPY the CSV rows into a plain table shaped like sales_daily, committed."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "CREATE TABLE public.bench_copy (day date NOT NULL, outlet_id text NOT NULL, sku_id text NOT NULL, "
            "value numeric(18, 4) NOT NULL, units bigint NOT NULL, lines integer NOT NULL)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_to_table(
                "bench_copy", source=rows_file, columns=baselines.COPY_COLUMNS, schema_name="public", format="csv"
            )
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE public.bench_copy")
        return seconds
    finally:
        await conn.close()


async def run(
    infra: Infra,
    database_url: str,
    bootstrap_servers: str,
    reference: list[dict[str, Any]],
    factory: OrderFactory,
    today: date,
    order_lines: int,
) -> tuple[list[Result], ServiceProcess]:
    await produce_reference(bootstrap_servers, reference)
    generated = await produce_orders(bootstrap_servers, factory, today, order_lines, infra.work_dir / "lines.csv")
    copy_seconds = await copy_rows(database_url, generated.rows_file)
    generated.rows_file.unlink()
    read_seconds = await baselines.kafka_read_all(bootstrap_servers, TRADE.name, TRADE.partitions, generated.events)

    spawned = time.perf_counter()
    query_api = infra.start_service("query-api", "rebuild", database_url, bootstrap_servers)
    ready = time.perf_counter()
    done = await wait_until_applied(
        database_url, TRADE.name, generated.events, "rebuild: replaying into an empty projection", timeout=7200
    )
    conn = await asyncpg.connect(database_url)
    try:
        projected = await sales_lines(conn)
    finally:
        await conn.close()

    total = done - spawned
    copy_rate = generated.lines / copy_seconds
    details = {
        "events": generated.events,
        "order_lines": generated.lines,
        "total_seconds": round(total, 2),
        "startup_seconds": round(ready - spawned, 2),
        "events_per_s": round(generated.events / total, 1),
        "events_per_s_after_ready": round(generated.events / (done - ready), 1),
        "generate_and_produce_seconds": round(generated.seconds, 2),
        "raw_copy_seconds": round(copy_seconds, 3),
        # The ceiling of any consumer of the topic: reading it with nothing done per record.
        "raw_kafka_read_seconds": round(read_seconds, 3),
        "raw_kafka_read_lines_per_s": round(generated.lines / read_seconds, 1),
        "raw_kafka_read_vs_copy": round(copy_seconds / read_seconds, 4),
        "replay_vs_raw_kafka_read": round(read_seconds / total, 4),
        "projection_lines": projected,
        "projection_exact": projected == generated.lines,
    }
    return [
        Result(
            "4 rebuild",
            "replay -> projection",
            generated.lines / total,
            "lines/s",
            "raw Postgres COPY (same lines)",
            copy_rate,
            TARGET,
            details,
            {"projection_exact": projected == generated.lines},
        ),
        Result("4 rebuild", "replay events/s", generated.events / total, "events/s"),
        Result(
            "4 rebuild",
            "raw aiokafka read of the topic",
            generated.lines / read_seconds,
            "lines/s",
            "raw Postgres COPY (same lines)",
            copy_rate,
        ),
        Result("4 rebuild", f"total time for {generated.lines:,} lines", total, "s"),
    ], query_api
