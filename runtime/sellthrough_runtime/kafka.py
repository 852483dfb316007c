"""Kafka clients configured the one way this system uses them.

No idempotent or transactional producer: exactly-once effects come from the outbox and from consumers
that store offsets and event ids in Postgres (some brokers, Tansu among them, reject both features).
"""

import contextlib
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sellthrough_contracts import TOPICS, Topic

log = logging.getLogger(__name__)


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
    )


def make_consumer(
    bootstrap_servers: str,
    group_id: str,
    client_id: str,
    *,
    session_timeout_ms: int = 6000,
    rebalance_timeout_ms: int = 5000,
) -> AIOKafkaConsumer:
    """Offsets are never committed to Kafka: they live in Postgres with the state they produced."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 6, 100),
        rebalance_timeout_ms=rebalance_timeout_ms,
    )


def make_offsets_reader(bootstrap_servers: str, client_id: str) -> AIOKafkaConsumer:
    """A consumer outside any group, only to ask partitions where they begin and end."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, client_id=client_id, enable_auto_commit=False)


async def ensure_topics(bootstrap_servers: str, topics: tuple[Topic, ...] = TOPICS, replication: int = 1) -> None:
    """Create any missing topic with its configured partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="sellthrough-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t.name, t.partitions, replication) for t in topics if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another instance created it first
                await admin.create_topics(missing)
            log.info("topics created", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()
