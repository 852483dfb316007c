"""Raw paths the pipeline and rebuild are compared with: aiokafka produce->consume of the same record
bytes, and PostgreSQL COPY of the same rows."""

import asyncio
import time
import uuid
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic

from bench.data import LineRow
from sellthrough_runtime.kafka import client_security, make_admin, make_producer

KafkaRecord = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
COPY_COLUMNS = ("day", "outlet_id", "sku_id", "value", "units", "lines")


async def kafka_produce_consume(bootstrap_servers: str, records: Sequence[KafkaRecord], partitions: int = 6) -> float:
    """Seconds from the first send to the last record read back, for the same keys, values and headers sent
    to a fresh topic with the relay's producer settings (acks=all) and read by one plain consumer."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = make_admin(bootstrap_servers, "bench-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_security(),
    )
    await consumer.start()
    producer = make_producer(bootstrap_servers, client_id="bench-raw")
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()

        async def consume() -> float:
            seen = 0
            while seen < len(records):
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                seen += sum(len(b) for b in batches.values())
            return time.perf_counter()

        reading = asyncio.create_task(consume())
        await asyncio.sleep(0.5)  # let the consumer fetch its (empty) partitions first
        started = time.perf_counter()
        for start in range(0, len(records), 10_000):
            deliveries = [
                await producer.send(topic, value, key=key, headers=headers)
                for _, key, value, headers in records[start : start + 10_000]
            ]
            await asyncio.gather(*deliveries)
        finished = await asyncio.wait_for(reading, timeout=600)
        return finished - started
    finally:
        await producer.stop()
        await consumer.stop()


async def kafka_read_all(bootstrap_servers: str, topic: str, partitions: int, expected: int) -> float:
    """Seconds for one plain consumer (no group, nothing decoded) to read `expected` records of every partition
    of `topic` from the beginning: the most any consumer of that topic can do here, whatever it does next."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_security(),
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        started = time.perf_counter()
        seen = 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            seen += sum(len(b) for b in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def postgres_copy(database_url: str, rows: Sequence[LineRow]) -> float:
    """Seconds to COPY the rows into a plain table shaped like sales_daily (no index), committed."""
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"CREATE TABLE public.{table} (day date NOT NULL, outlet_id text NOT NULL, sku_id text NOT NULL, "
            "value numeric(18, 4) NOT NULL, units bigint NOT NULL, lines integer NOT NULL)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=rows, columns=COPY_COLUMNS, schema_name="public")
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE public.{table}")
        return seconds
    finally:
        await conn.close()
