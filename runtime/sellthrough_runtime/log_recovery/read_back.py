"""After a republish, prove that every published event can be read back from the broker: read the relay's
topics from the start, as a consumer would, and list the rows published (at or below the mark) before the read
began whose event ids were not found (why a broker may not come back clean: docs/broker-behaviour.md)."""

import logging
import time
import uuid

import asyncpg
from aiokafka import TopicPartition

from sellthrough_runtime.kafka import make_offsets_reader
from sellthrough_runtime.kafka_security import KafkaSecuritySettings

log = logging.getLogger(__name__)

_QUIET_FETCHES = 3
"""Consecutive empty fetches (of up to 1 s each) taken as the end of the topics: some brokers understate where a
partition ends, so its end offset cannot say when a read is complete."""
_CHUNK = 10_000


async def unreadable_events(
    pool: asyncpg.Pool, bootstrap_servers: str, service: str, security: KafkaSecuritySettings | None = None
) -> list[int]:
    """The seqs of the outbox rows published before this call that cannot be read back from their topics now."""
    async with pool.acquire() as conn:
        published_through: int = await conn.fetchval("SELECT published_through FROM outbox_progress")
        topics = [r["topic"] for r in await conn.fetch("SELECT DISTINCT topic FROM outbox_partitions")]
        await conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS outbox_read_back (event_id uuid NOT NULL)")
        await conn.execute("TRUNCATE outbox_read_back")
        read = await _copy_event_ids(conn, bootstrap_servers, service, topics, security)
        missing = [
            r["seq"]
            for r in await conn.fetch(
                "SELECT seq FROM outbox o WHERE o.seq <= $1 AND o.topic = ANY($2::text[]) "
                "AND NOT EXISTS (SELECT 1 FROM outbox_read_back r WHERE r.event_id = o.event_id) ORDER BY seq",
                published_through,
                topics,
            )
        ]
        await conn.execute("DROP TABLE outbox_read_back")
    log.info(
        "outbox read back from the broker",
        extra={"service": service, "topics": topics, "records_read": read, "missing": len(missing)},
    )
    return missing


async def _copy_event_ids(
    conn: asyncpg.Connection,
    bootstrap_servers: str,
    service: str,
    topics: list[str],
    security: KafkaSecuritySettings | None,
) -> int:
    reader = make_offsets_reader(bootstrap_servers, client_id=f"{service}-relay-read-back", security=security)
    await reader.start()
    read = 0
    try:
        await reader.topics()  # fetches metadata for every topic, so their partitions are known below
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        chunk: list[tuple[uuid.UUID]] = []
        quiet = 0
        started = time.monotonic()
        while quiet < _QUIET_FETCHES:
            fetched = await reader.getmany(timeout_ms=1000, max_records=_CHUNK)
            quiet = 0 if fetched else quiet + 1
            for records in fetched.values():
                for record in records:
                    event_id = dict(record.headers).get("event_id")
                    if event_id is not None:
                        chunk.append((uuid.UUID(event_id.decode()),))
            if len(chunk) >= _CHUNK or (chunk and not fetched):
                await conn.copy_records_to_table("outbox_read_back", records=chunk)
                read += len(chunk)
                chunk = []
                log.debug("reading the outbox back", extra={"records_read": read, "s": time.monotonic() - started})
    finally:
        await reader.stop()
    return read
