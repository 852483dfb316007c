"""Scenario 4, rebuild: replay the whole trade topic into an empty projection.

`order_lines` lines of OrderCaptured events are generated and produced straight onto a fresh broker's trade topic
(encoded with the contracts' encode_event, as the relay would publish them), the reference data onto its reference
topic. Then query-api starts on an empty database, and the time until its projection has applied every record is
measured against two loads of the same lines into the tables that hold line-level facts, made by query-api's own
migrations in scratch schemas (bench/line_facts.py):

- COPY into those tables as migrated, with their indexes (the ratio target);
- COPY into unindexed copies of them, then CREATE INDEX of the same indexes (what a bulk rebuild can do).

A plain librdkafka consumer reading the whole topic with nothing done per record is timed too: no consumer of the
topic can beat it. query-api's peak memory during the replay is reported apart from its peak afterwards.

With `command` (the `rebuild_command` scenario), `sellthrough-rebuild` itself is then run against the same database
while query-api serves it: the whole command (a new schema replayed through the bulk loaders, then swapped in)
timed against the same COPY baselines, with its peak memory, and the swapped-in projection checked to hold exactly
the lines sent."""

import asyncio
import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.progress import Progress

from bench import raw_kafka
from bench.data import OrderFactory, accepted, kafka_record
from bench.infra import Infra
from bench.line_facts import LineTable, index_definitions, order_lines, quoted, scratch_schema
from bench.projection import sales_lines, wait_until_applied
from bench.results import Result, Target
from sellthrough_contracts.topics import REFERENCE, TRADE
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.kafka import make_producer

TARGET = Target(">= 150,000 lines/s and >= 50% of COPY into the indexed tables", min_value=150_000, min_ratio=0.5)
MEMORY_TARGET = Target("< 300 MiB", max_value=300)
CHUNK = 5_000
INDEXED, UNINDEXED = "bench_copy_indexed", "bench_copy_unindexed"


@dataclass
class Generated:
    events: int
    lines: int
    files: dict[str, Path]
    """Line table -> a CSV of its rows."""
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
    bootstrap_servers: str,
    factory: OrderFactory,
    today: date,
    order_lines_wanted: int,
    tables: list[LineTable],
    directory: Path,
) -> Generated:
    """Orders over the last 90 days until exactly `order_lines_wanted` lines, onto the trade topic; their lines
    are written as rows of each line table (CSV) for the COPY baselines."""
    started = time.perf_counter()
    brands = {s.sku_id: s.brand for s in factory.masters.skus}
    files = {t.name: directory / f"{t.name}.csv" for t in tables}
    producer = make_producer(bootstrap_servers, client_id="bench-loader")
    await producer.start()
    events = lines = 0
    outs = {name: path.open("w", newline="") for name, path in files.items()}
    try:
        writers = {name: csv.writer(out) for name, out in outs.items()}
        with Progress() as progress:
            task = progress.add_task("rebuild: generating and producing order lines", total=order_lines_wanted)
            while lines < order_lines_wanted:
                chunk: list[dict[str, Any]] = []
                while lines < order_lines_wanted and len(chunk) < CHUNK:
                    order = factory.past_order(today, 90, 1)
                    order["payload"]["lines"] = order["payload"]["lines"][: order_lines_wanted - lines]
                    lines += len(order["payload"]["lines"])
                    chunk.append(order)
                now = datetime.now(UTC)
                deliveries = []
                for order in chunk:
                    topic, key, value, headers = kafka_record(accepted(order, now))
                    deliveries.append(await producer.send(topic, value, key=key, headers=headers))
                    facts = order_lines(order, now, brands)
                    for table in tables:
                        writers[table.name].writerows(table.row(line) for line in facts)
                for delivery in deliveries:
                    await delivery
                events += len(chunk)
                progress.update(task, completed=lines)
    finally:
        for out in outs.values():
            out.close()
        await producer.stop()
    return Generated(events, lines, files, time.perf_counter() - started)


async def _copy(conn: asyncpg.Connection, schema: str, tables: list[LineTable], files: dict[str, Path]) -> None:
    for table in tables:
        await conn.copy_to_table(
            table.name, source=files[table.name], columns=table.columns, schema_name=schema, format="csv"
        )


async def copy_indexed(database_url: str, tables: list[LineTable], files: dict[str, Path]) -> float:
    """Seconds to COPY the lines into the line tables as query-api's migrations made them (indexes and all)."""
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await _copy(conn, INDEXED, tables, files)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def copy_then_index(database_url: str, tables: list[LineTable], files: dict[str, Path]) -> float:
    """Seconds to COPY the lines into unindexed copies of the line tables, then build the same indexes."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE SCHEMA {UNINDEXED}")
        indexes = []
        for table in tables:
            name = quoted(table.name)
            await conn.execute(f"CREATE TABLE {UNINDEXED}.{name} (LIKE {INDEXED}.{name} INCLUDING DEFAULTS)")
            for _, definition in await index_definitions(conn, INDEXED, table.name):
                # A partitioned table's indexes read "ON ONLY <table>"; its unindexed copy is a plain table.
                moved = definition.replace(f" ON ONLY {INDEXED}.", f" ON {UNINDEXED}.", 1)
                indexes.append(moved.replace(f" ON {INDEXED}.", f" ON {UNINDEXED}.", 1))
        started = time.perf_counter()
        async with conn.transaction():
            await _copy(conn, UNINDEXED, tables, files)
            for statement in indexes:
                await conn.execute(statement)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def drop_scratch(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for schema in (INDEXED, UNINDEXED):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def run_command(
    infra: Infra, database_url: str, bootstrap_servers: str, lines: int, indexed_rate: float
) -> list[Result]:
    """`sellthrough-rebuild` as an operator runs it (its own process, query-api's environment), start to swap."""
    env = os.environ | infra.service_env(database_url, bootstrap_servers)
    log_path = infra.work_dir / "sellthrough-rebuild.log"
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "query_api.jobs.rebuild", env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        infra.memory.watch("sellthrough-rebuild", process.pid)
        code = await process.wait()
        seconds = time.perf_counter() - started
        infra.memory.unwatch("sellthrough-rebuild")
    if code != 0:
        raise RuntimeError(f"sellthrough-rebuild exited {code}: see {log_path.name} in the bench logs")
    peak = infra.memory.peaks_mib().get("sellthrough-rebuild", 0.0)
    conn = await asyncpg.connect(database_url)
    try:
        projected = await sales_lines(conn)
    finally:
        await conn.close()
    details = {
        "order_lines": lines,
        "total_seconds": round(seconds, 2),
        "peak_rss_mib": round(peak, 1),
        "projection_lines": projected,
        "projection_exact": projected == lines,
    }
    return [
        Result(
            "4 rebuild",
            "sellthrough-rebuild (replay, bulk loads, swap)",
            lines / seconds,
            "lines/s",
            "COPY into the same indexed tables",
            indexed_rate,
            TARGET,
            details,
            {"projection_exact": projected == lines},
        ),
        Result("4 rebuild", "sellthrough-rebuild peak memory", peak, "MiB", target=MEMORY_TARGET),
    ]


async def run(
    infra: Infra,
    database_url: str,
    bootstrap_servers: str,
    reference: list[dict[str, Any]],
    factory: OrderFactory,
    today: date,
    order_lines_wanted: int,
    command: bool = False,
) -> tuple[list[Result], ServiceProcess]:
    tables = await scratch_schema(database_url, INDEXED)
    await produce_reference(bootstrap_servers, reference)
    generated = await produce_orders(bootstrap_servers, factory, today, order_lines_wanted, tables, infra.work_dir)
    try:
        indexed_seconds = await copy_indexed(database_url, tables, generated.files)
        unindexed_seconds = await copy_then_index(database_url, tables, generated.files)
    finally:
        for path in generated.files.values():
            path.unlink()
        await drop_scratch(database_url)
    read_seconds = await raw_kafka.read_topic(bootstrap_servers, TRADE.name, TRADE.partitions, generated.events)

    spawned = time.perf_counter()
    query_api = infra.start_service("query-api", "rebuild", database_url, bootstrap_servers)
    ready = time.perf_counter()
    trade_done = await wait_until_applied(
        database_url, TRADE.name, generated.events, "rebuild: replaying into an empty projection", timeout=7200
    )
    # The masters too: read concurrently with the trade topic, they may finish later, and until they do the
    # rollups by brand and distributor still hold sales under masters not yet known (moved when they arrive).
    reference_done = await wait_until_applied(
        database_url, REFERENCE.name, len(reference), "rebuild: reference data", timeout=600
    )
    done = max(trade_done, reference_done)
    # The peak of the replay alone: the queries scenario that follows watches the same process under another name.
    infra.memory.unwatch("query-api (rebuild)")
    replay_peak = infra.memory.peaks_mib().get("query-api (rebuild)", 0.0)
    assert query_api.process is not None
    infra.memory.watch("query-api (after rebuild)", query_api.process.pid)
    conn = await asyncpg.connect(database_url)
    try:
        projected = await sales_lines(conn)
    finally:
        await conn.close()

    total = done - spawned
    lines = generated.lines
    indexed_rate = lines / indexed_seconds
    details = {
        "events": generated.events,
        "order_lines": lines,
        "line_tables": {t.name: list(t.columns) for t in tables},
        "total_seconds": round(total, 2),
        "startup_seconds": round(ready - spawned, 2),
        "events_per_s": round(generated.events / total, 1),
        "events_per_s_after_ready": round(generated.events / (done - ready), 1),
        "generate_and_produce_seconds": round(generated.seconds, 2),
        "copy_indexed_seconds": round(indexed_seconds, 3),
        "copy_then_index_seconds": round(unindexed_seconds, 3),
        # The ceiling of any consumer of the topic: reading it with nothing done per record.
        "raw_kafka_read_seconds": round(read_seconds, 3),
        "raw_kafka_read_lines_per_s": round(lines / read_seconds, 1),
        "replay_vs_raw_kafka_read": round(read_seconds / total, 4),
        "query_api_peak_rss_mib_during_replay": round(replay_peak, 1),
        "projection_lines": projected,
        "projection_exact": projected == lines,
    }
    results = [
        Result(
            "4 rebuild",
            "replay -> projection",
            lines / total,
            "lines/s",
            "COPY into the same indexed tables",
            indexed_rate,
            TARGET,
            details,
            {"projection_exact": projected == lines},
        ),
        Result(
            "4 rebuild",
            "COPY into unindexed, then CREATE INDEX",
            lines / unindexed_seconds,
            "lines/s",
            "COPY into the same indexed tables",
            indexed_rate,
        ),
        Result("4 rebuild", "raw librdkafka read of the topic", lines / read_seconds, "lines/s"),
        Result("4 rebuild", "replay events/s", generated.events / total, "events/s"),
        Result("4 rebuild", "query-api peak memory during the replay", replay_peak, "MiB", target=MEMORY_TARGET),
        Result("4 rebuild", f"total time for {lines:,} lines", total, "s"),
    ]
    if command:
        results += await run_command(infra, database_url, bootstrap_servers, lines, indexed_rate)
    return results, query_api
