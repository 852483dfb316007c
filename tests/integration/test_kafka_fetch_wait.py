"""The consumers' fetch wait against the real broker: a record reaches a consumer built by make_consumer within
tens of milliseconds of its acknowledgement. Tansu holds every fetch for its whole max wait (half of it from
250 ms on) even when records are there, so with aiokafka's default of 500 ms each record waited ~200 ms before a
consumer saw it: most of the freshness budget (docs/benchmarks.md, scenario 3)."""

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sellthrough_runtime.kafka import make_consumer, make_producer
from tests.conftest import Infra

TOPIC = "fetch-wait-test"


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(infra.kafka_bootstrap_servers, "fetch-wait-test")
    await producer.start()
    await producer.send_and_wait(TOPIC, b"first", partition=0)  # creates the topic
    yield producer
    await producer.stop()


async def ack_to_seen(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, records: int) -> list[float]:
    """For each record sent at an idle moment: seconds from its acknowledgement to the consumer's getmany."""
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.getmany(timeout_ms=100)
    waits = []
    for _ in range(records):
        await asyncio.sleep(0.03)  # the consumer's fetch is at the broker, waiting
        await producer.send_and_wait(TOPIC, b"x", partition=0)
        acknowledged = time.monotonic()
        while not await consumer.getmany(timeout_ms=2000):
            pass
        waits.append(time.monotonic() - acknowledged)
    return waits


async def test_a_consumer_sees_a_record_soon_after_it_is_acknowledged(infra: Infra, producer: AIOKafkaProducer) -> None:
    consumer = make_consumer(infra.kafka_bootstrap_servers, "fetch-wait-test", "fetch-wait-test")
    await consumer.start()
    try:
        waits = await ack_to_seen(producer, consumer, 15)
    finally:
        await consumer.stop()
    # 20 ms of fetch wait: ~0-25 ms; with a 500 ms wait the median is ~200 ms.
    assert statistics.median(waits) < 0.1, [round(w * 1000) for w in waits]
