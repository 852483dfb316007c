"""Every record on a broker, read back with a client independent of the services (librdkafka through
confluent-kafka, not aiokafka) and validated against the released JSON Schema of its (event_type,
schema_version): the promise the contracts make to readers, checked on what the services really wrote."""

import functools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from sellthrough_contracts import EVENT_TYPES, topic_for
from sellthrough_contracts.schemas import SCHEMAS_DIR
from sellthrough_runtime.kafka_security import KafkaSecuritySettings, librdkafka_security


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def read_every_record(bootstrap_servers: str, idle_seconds: float = 1.0, timeout_seconds: float = 120) -> list[Record]:
    """Every record of every non-internal topic. Tansu's high watermark can sit below the real end of a partition,
    so the read goes on past the watermarks until nothing more arrives for `idle_seconds`."""
    # Secured as the services are (KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_*, KAFKA_SASL_*).
    security = librdkafka_security(KafkaSecuritySettings())
    topics = AdminClient({"bootstrap.servers": bootstrap_servers, **security}).list_topics(timeout=10).topics
    partitions = [
        TopicPartition(name, number, OFFSET_BEGINNING)
        for name, topic in sorted(topics.items())
        if not name.startswith("__")
        for number in sorted(topic.partitions)
    ]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"record-check-{uuid.uuid4()}",  # assign() needs none, librdkafka wants one
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            **security,
        }
    )
    try:
        return list(_consume(consumer, partitions, idle_seconds, timeout_seconds))
    finally:
        consumer.close()


def _consume(
    consumer: Consumer, partitions: list[TopicPartition], idle_seconds: float, timeout_seconds: float
) -> Iterator[Record]:
    consumer.assign(partitions)
    watermarks = {(p.topic, p.partition): consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
    next_offset = {key: 0 for key in watermarks}
    deadline = time.monotonic() + timeout_seconds
    last_record = time.monotonic()
    while time.monotonic() < deadline:
        messages = consumer.consume(num_messages=1000, timeout=0.2)
        for message in messages:
            if message.error() is not None:
                raise KafkaException(message.error())
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                raise KafkaException(f"a record without its position: {message!r}")
            next_offset[(topic, partition)] = offset + 1
            yield Record(topic, partition, offset, message.value())
        if messages:
            last_record = time.monotonic()
        elif all(next_offset[k] >= w for k, w in watermarks.items()) and time.monotonic() - last_record > idle_seconds:
            return
    raise TimeoutError(f"records still arriving, or partitions short of their watermarks, after {timeout_seconds}s")


@functools.cache
def _validator(event_type: str, version: int) -> jsonschema.protocols.Validator | None:
    path = SCHEMAS_DIR / "released" / f"{event_type}.v{version}.json"
    if not Path(path).exists():
        return None
    schema = json.loads(path.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def problem_with(record: Record) -> str | None:
    """Why a record breaks the contracts, or None."""
    if record.value is None:
        return "record has no value"
    try:
        document: Any = json.loads(record.value)
    except ValueError as error:
        return f"not JSON: {error}"
    if not isinstance(document, dict):
        return "not a JSON object"
    event_type, version = document.get("event_type"), document.get("schema_version")
    if event_type not in EVENT_TYPES:
        return f"unknown event_type {event_type!r}"
    if topic_for(event_type).name != record.topic:
        return f"{event_type} belongs on {topic_for(event_type).name}"
    validator = _validator(event_type, version) if isinstance(version, int) else None
    if validator is None:
        return f"no released schema for {event_type} schema_version {version!r}"
    worst = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if worst is not None:
        return f"{event_type} v{version} at {worst.json_path}: {worst.message}"
    return None


def contract_breaches(bootstrap_servers: str) -> tuple[int, list[str]]:
    """(records read, one line per record that breaks its released schema: where, why, and the record)."""
    records = read_every_record(bootstrap_servers)
    breaches = []
    for record in records:
        problem = problem_with(record)
        if problem is not None:
            value = (record.value or b"")[:1000].decode(errors="replace")
            breaches.append(f"{record.where()}: {problem}\n    record: {value}")
    return len(records), breaches


def fail_on_contract_breaches(bootstrap_servers: str) -> None:
    """Fail the test run, naming each offending record and why, if any record breaks its released schema."""
    read, breaches = contract_breaches(bootstrap_servers)
    if breaches:
        shown = "\n".join(breaches[:20])
        pytest.fail(f"{len(breaches)} of {read} records break their released schema:\n{shown}", pytrace=False)
