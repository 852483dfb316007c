"""Where scenario 3's accept -> visible latency goes, stage by stage, for every order of a measured run.

Each stage ends at a time the system already records, so nothing is added to the path being measured:
- accept: the POST's answer (the bench's clock) after order-capture's transaction began (`outbox.created_at`,
  the accept transaction's start);
- relay: the record's Kafka timestamp (set by the relay's producer when it builds the record batch) after the
  POST's answer: how long the row waited for the relay to claim it;
- to apply: query-api's `processed_events.applied_at` (the start of the consumer transaction that applied it)
  after the Kafka timestamp: the produce request and its acknowledgement, the consumer's fetch, its decoding and
  any batch applied before it;
- to visible: the first poll that saw it after the apply transaction began: the apply transaction and its commit,
  the poll interval and the GET itself.
All clocks are the same machine's wall clock (the bench converts its monotonic times).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.stats import latency_summary_ms
from sellthrough_contracts.topics import TRADE
from sellthrough_runtime.kafka import client_security

_CREATED = "SELECT event_id, extract(epoch FROM created_at)::float8 FROM order_capture.outbox WHERE event_id = ANY($1)"
_APPLIED = """
SELECT event_id, extract(epoch FROM applied_at)::float8 FROM query_api.processed_events
WHERE group_id = 'query-api.projections' AND event_id = ANY($1)
"""


@dataclass(frozen=True)
class Batch:
    """One POST of the run: its orders' ids, when it was answered and when it became visible (wall clock)."""

    event_ids: Sequence[str]
    answered: float
    visible: float | None


async def _kafka_times(bootstrap: str, wanted: set[str]) -> dict[str, float]:
    """The Kafka timestamp (seconds) of each wanted event on the trade topic, read from its start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_security())
    await consumer.start()
    try:
        partitions = [TopicPartition(TRADE.name, p) for p in sorted(consumer.partitions_for_topic(TRADE.name) or ())]
        if not partitions:
            await consumer.client.force_metadata_update()
            ids = consumer.partitions_for_topic(TRADE.name) or set()
            partitions = [TopicPartition(TRADE.name, p) for p in sorted(ids)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        times: dict[str, float] = {}

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for record in records:
                    event_id = next((v.decode() for k, v in record.headers if k == "event_id"), None)
                    if event_id in wanted:
                        times[event_id] = record.timestamp / 1000
        return times
    finally:
        await consumer.stop()


async def stages(database_url: str, bootstrap: str, batches: Sequence[Batch]) -> dict[str, Any]:
    """p50/p90/p99 of each stage over the orders of `batches` (those visible)."""
    ids = [e for b in batches for e in b.event_ids]
    conn = await asyncpg.connect(database_url)
    try:
        uuids = [UUID(e) for e in ids]
        created = {str(k): v for k, v in await conn.fetch(_CREATED, uuids)}
        applied = {str(k): v for k, v in await conn.fetch(_APPLIED, uuids)}
    finally:
        await conn.close()
    sent = await asyncio.wait_for(_kafka_times(bootstrap, set(ids)), 120)
    accept, relay, to_apply, to_visible = [], [], [], []
    missing = 0
    for batch in batches:
        for event_id in batch.event_ids:
            c, s, a = created.get(event_id), sent.get(event_id), applied.get(event_id)
            if c is None or s is None or a is None or batch.visible is None:
                missing += 1
                continue
            accept.append(batch.answered - c)
            relay.append(s - batch.answered)
            to_apply.append(a - s)
            to_visible.append(batch.visible - a)
    return {
        "orders": len(ids),
        "orders_not_traced": missing,
        "accept_txn_start_to_answer": latency_summary_ms(accept),
        "answer_to_relay_send": latency_summary_ms(relay),
        "relay_send_to_apply_txn_start": latency_summary_ms(to_apply),
        "apply_txn_start_to_visible": latency_summary_ms(to_visible),
    }
