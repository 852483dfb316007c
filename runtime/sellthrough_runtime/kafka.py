"""Kafka clients configured the one way this system uses them.

No idempotent or transactional producer: exactly-once effects come from the outbox and from consumers
that store offsets and event ids in Postgres (some brokers, Tansu among them, reject both features).

Every client takes `security` (TLS and SASL, sellthrough_runtime.kafka_security). Without one it is read from
the KAFKA_* environment variables, so a tool or script that builds clients here is secured as the services are.
"""

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sellthrough_contracts import TOPICS, Topic
from sellthrough_runtime.kafka_security import KafkaSecuritySettings, aiokafka_security

log = logging.getLogger(__name__)


def client_security(security: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments for `security`, or for the KAFKA_* environment variables when it is None."""
    return aiokafka_security(security if security is not None else KafkaSecuritySettings())


def make_producer(
    bootstrap_servers: str, client_id: str, *, security: KafkaSecuritySettings | None = None
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **client_security(security),
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
    fetch_max_wait_ms: int = 20,
    security: KafkaSecuritySettings | None = None,
) -> AIOKafkaConsumer:
    """Offsets are never committed to Kafka: they live in Postgres with the state they produced.

    `fetch_max_wait_ms` is small (aiokafka's default is 500) because it is the latency floor of every record on
    Tansu: its fetch reads what is there, then sleeps out the wait (half of it from 250 ms on) before answering,
    records or not. Kafka answers as soon as fetch_min_bytes (1) are there, so there it only sets how often an
    idle consumer asks. Batches still grow under load: the next fetch is sent once the previous records are
    taken, and it reads everything produced meanwhile."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        **client_security(security),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 6, 100),
        rebalance_timeout_ms=rebalance_timeout_ms,
    )


def make_offsets_reader(
    bootstrap_servers: str, client_id: str, *, security: KafkaSecuritySettings | None = None
) -> AIOKafkaConsumer:
    """A consumer outside any group, only to ask partitions where they begin and end."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_auto_commit=False,
        **client_security(security),
    )


def make_admin(
    bootstrap_servers: str, client_id: str, *, security: KafkaSecuritySettings | None = None
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id, **client_security(security))


async def ensure_topics(
    bootstrap_servers: str,
    topics: tuple[Topic, ...] = TOPICS,
    replication: int = 1,
    *,
    security: KafkaSecuritySettings | None = None,
    partitions: Mapping[str, int] | None = None,
) -> None:
    """Create any missing topic with its configured partition count. `partitions`: counts by topic name that
    replace the contracts' (the bench's scale-out runs compare counts); an existing topic is never changed, and
    producers and consumers learn each topic's count from the broker, so the first creator's count holds."""
    counts = partitions or {}
    admin = make_admin(bootstrap_servers, "sellthrough-admin", security=security)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t.name, counts.get(t.name, t.partitions), replication) for t in topics if t.name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another instance created it first
                await admin.create_topics(missing)
            log.info("topics created", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()
