"""Transactional outbox: write events with the state change, publish them to Kafka afterwards.

Accepted means durable in Postgres. The relay publishes unpublished rows in order with acks=all and marks
them published; if the broker is down it retries, so an outage delays events and never loses them.
Several relays may run (one per instance): FOR UPDATE SKIP LOCKED gives each its own rows.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from sellthrough_contracts import Envelope, encode_event, topic_for
from sellthrough_runtime.kafka import make_producer
from sellthrough_runtime.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISH_SECONDS, OUTBOX_PUBLISHED
from sellthrough_runtime.tracing import carrier_for

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO outbox (event_id, event_type, schema_version, topic, partition_key, value, trace_headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bytea[], $7::jsonb[])
"""

_CLAIM = """
SELECT seq, event_id, event_type, schema_version, topic, partition_key, value, trace_headers
FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
"""


async def append_to_outbox(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Queue events for publishing; call inside the transaction that produced them."""
    if not events:
        return
    await conn.execute(
        _INSERT,
        [e.event_id for e in events],
        [e.event_type for e in events],
        [e.schema_version for e in events],
        [topic_for(e.event_type).name for e in events],
        [e.key or e.partition_key() for e in events],
        [encode_event(e) for e in events],
        [carrier_for(e.causation_id) for e in events],
    )


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, bootstrap_servers: str, service: str, *, batch_size: int = 1000) -> None:
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._service = service
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay new rows are waiting, so it publishes now instead of at its next poll."""
        self._wake.set()

    async def run(self, idle_poll_seconds: float = 0.5) -> None:
        """Publish until cancelled."""
        producer = make_producer(self._bootstrap_servers, client_id=f"{self._service}-relay")
        await producer.start()
        try:
            await self._publish_forever(producer, idle_poll_seconds)
        finally:
            await producer.stop()

    async def _publish_forever(self, producer: AIOKafkaProducer, idle_poll_seconds: float) -> None:
        backoff = 0.1
        while True:
            try:
                published = await self.publish_batch(producer)
                backoff = 0.1
            except Exception as error:  # noqa: BLE001 - the relay must outlive any broker or database fault
                # Nothing was marked published, so the same rows are retried: delayed, never lost.
                log.warning("outbox publish failed; retrying", extra={"error": repr(error), "backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                await self._record_backlog()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_poll_seconds)

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish up to one batch of unpublished rows; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            started = time.perf_counter()
            deliveries = [
                await producer.send(
                    row["topic"],
                    row["value"],
                    key=row["partition_key"].encode(),
                    headers=[
                        ("event_id", str(row["event_id"]).encode()),
                        ("event_type", row["event_type"].encode()),
                        ("schema_version", str(row["schema_version"]).encode()),
                        *((name, str(value).encode()) for name, value in row["trace_headers"].items()),
                    ],
                )
                for row in rows
            ]
            await asyncio.gather(*deliveries)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
        OUTBOX_PUBLISH_SECONDS.labels(self._service).observe(time.perf_counter() - started)
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def _record_backlog(self) -> None:
        # Cheap: the partial index holds only unpublished rows.
        count = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        OUTBOX_BACKLOG.labels(self._service).set(count)
