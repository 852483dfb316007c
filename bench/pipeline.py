"""Scenario 2, pipeline: events/s from order-capture's outbox to applied in query-api's sales projection,
vs the batched raw path: librdkafka produce->consume of the same records (bench/raw_kafka.py). Raw PostgreSQL COPY
of the same rows is reported beside it.

The events are written straight into the outbox table (as accepted events would be), so the figure covers
relay -> Kafka -> consumer -> projection only, not HTTP ingest."""

import time
from datetime import UTC, date, datetime

import asyncpg

from bench import baselines, raw_kafka
from bench.data import OUTBOX_COLUMNS, OrderFactory, accepted, kafka_record, line_rows, outbox_row
from bench.projection import applied, sales_lines, wait_until_applied
from bench.results import Result, Target
from sellthrough_contracts.topics import TRADE

TARGET = Target(">= 15,000 events/s and >= 50% of batched raw produce->consume", min_value=15_000, min_ratio=0.5)


async def run(
    database_url: str, bootstrap_servers: str, factory: OrderFactory, today: date, events: int
) -> list[Result]:
    orders = [factory.past_order(today, 30, 2) for _ in range(events)]
    now = datetime.now(UTC)
    envelopes = [accepted(o, now) for o in orders]
    rows = [row for o in orders for row in line_rows(o)]
    lines = len(rows)

    kafka_seconds = await raw_kafka.produce_consume(bootstrap_servers, [kafka_record(e) for e in envelopes])
    copy_seconds = await baselines.postgres_copy(database_url, rows)
    kafka_rate, copy_rate = events / kafka_seconds, events / copy_seconds

    conn = await asyncpg.connect(database_url)
    try:
        before, lines_before = await applied(conn, TRADE.name), await sales_lines(conn)
        outbox = [outbox_row(e) for e in envelopes]
        async with conn.transaction():
            await conn.copy_records_to_table(
                "outbox", records=outbox, columns=OUTBOX_COLUMNS, schema_name="order_capture"
            )
        started = time.perf_counter()
        done = await wait_until_applied(
            database_url, TRADE.name, before + events, "pipeline: outbox -> projection", timeout=900
        )
        lines_after = await sales_lines(conn)
    finally:
        await conn.close()
    seconds = done - started
    rate = events / seconds
    details = {
        "events": events,
        "order_lines": lines,
        "seconds": round(seconds, 3),
        "order_lines_per_s": round(lines / seconds, 1),
        "raw_kafka_batched": {"seconds": round(kafka_seconds, 3), "events_per_s": round(kafka_rate, 1)},
        "raw_copy": {"seconds": round(copy_seconds, 3), "events_per_s": round(copy_rate, 1), "rows": lines},
        "projection_lines_added": lines_after - lines_before,
        "projection_exact": lines_after - lines_before == lines,
    }
    return [
        Result(
            "2 pipeline",
            "outbox -> projection",
            rate,
            "events/s",
            "raw produce->consume, batched (librdkafka)",
            kafka_rate,
            TARGET,
            details,
            {"projection_exact": lines_after - lines_before == lines},
        ),
        Result("2 pipeline", "raw produce->consume, batched (librdkafka)", kafka_rate, "events/s"),
        Result("2 pipeline", "raw Postgres COPY (same rows)", copy_rate, "events/s"),
    ]
