"""The batched raw Kafka path (librdkafka through confluent-kafka): a producer that batches (linger, many records
per request, acks=all as the relay) and a plain consumer reading the records back, nothing decoded. What any
pipeline over this broker could do at most on this machine; the pipeline and rebuild ratios are against it."""

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence

from aiokafka.admin import NewTopic
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from sellthrough_runtime.kafka import make_admin
from sellthrough_runtime.kafka_security import KafkaSecuritySettings, librdkafka_security

KafkaRecord = tuple[str, bytes, bytes, list[tuple[str, bytes]]]

PRODUCER_SETTINGS = {"acks": "all", "linger.ms": 5, "batch.num.messages": 10_000, "batch.size": 1_000_000}
CONSUMER_SETTINGS = {"fetch.max.bytes": 50 * 1024 * 1024, "max.partition.fetch.bytes": 8 * 1024 * 1024}


def _config(bootstrap_servers: str, extra: dict[str, object]) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap_servers, **librdkafka_security(KafkaSecuritySettings()), **extra}


async def create_topic(bootstrap_servers: str, partitions: int) -> str:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = make_admin(bootstrap_servers, "bench-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


def read_all(bootstrap_servers: str, topic: str, partitions: int, expected: int, timeout: float = 600) -> float:
    """Reads `expected` records of every partition of `topic` from the beginning (no group, nothing decoded);
    returns the time.perf_counter() the last one was read. Blocking: run it in a thread."""
    consumer = Consumer(
        _config(bootstrap_servers, {"group.id": f"bench-raw-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                                    **CONSUMER_SETTINGS})
    )  # fmt: skip
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        seen, deadline = 0, time.perf_counter() + timeout
        while seen < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw read of {topic}: {seen} of {expected} records after {timeout:.0f}s")
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    seen += 1
        return time.perf_counter()
    finally:
        consumer.close()


def produce_all(bootstrap_servers: str, topic: str, records: Sequence[KafkaRecord]) -> None:
    """Every record onto `topic` (its key, value and headers), batched, and waits until all are acknowledged."""
    producer = Producer(_config(bootstrap_servers, {"client.id": "bench-raw", **PRODUCER_SETTINGS}))
    failed: list[str] = []

    def delivered(error: object, _: object) -> None:
        if error is not None:
            failed.append(str(error))

    for _, key, value, headers in records:
        wire: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                producer.produce(topic, value, key, headers=wire, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let deliveries drain it
        producer.poll(0)
    if producer.flush(120) != 0 or failed:
        raise KafkaException(f"raw produce: {len(failed)} deliveries failed, first {failed[:1]}")


async def produce_consume(bootstrap_servers: str, records: Sequence[KafkaRecord], partitions: int = 6) -> float:
    """Seconds from the first record produced to the last read back, producer and consumer running together."""
    topic = await create_topic(bootstrap_servers, partitions)
    ready = threading.Event()

    def consume() -> float:
        ready.set()
        return read_all(bootstrap_servers, topic, partitions, len(records))

    reading = asyncio.create_task(asyncio.to_thread(consume))
    await asyncio.to_thread(ready.wait)
    await asyncio.sleep(0.5)  # let the consumer join its (empty) partitions first
    started = time.perf_counter()
    await asyncio.to_thread(produce_all, bootstrap_servers, topic, records)
    finished = await reading
    return finished - started


async def read_topic(bootstrap_servers: str, topic: str, partitions: int, expected: int) -> float:
    """Seconds for the plain consumer to read `expected` records of `topic` from the beginning."""
    started = time.perf_counter()
    finished = await asyncio.to_thread(read_all, bootstrap_servers, topic, partitions, expected)
    return finished - started
