"""Reading topics for a rebuild with librdkafka (confluent-kafka): partitions assigned explicitly from given
offsets up to the high watermarks taken when the rebuild starts, no consumer group, nothing committed to Kafka
(the offsets live in the rebuilt schema, stored with each batch as the live consumer stores them).

librdkafka fetches and decompresses in its own threads, ahead of the caller; aiokafka does both in the event
loop's thread, which the rebuild needs for decoding."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from sellthrough_runtime.kafka_security import KafkaSecuritySettings, librdkafka_security

BROKER_TIMEOUT_SECONDS = 10.0


class BrokerUnreachable(RuntimeError):
    """The broker did not answer (metadata or watermarks) in time."""


@dataclass(frozen=True)
class Span:
    """One partition's records to read: from `start` to its end, at least to `end`, its high watermark when the
    rebuild started (a lower bound: Tansu's watermark can sit below the real end, see SpanReader)."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def records(self) -> int:
        return max(self.end - self.start, 0)


def librdkafka_config(bootstrap_servers: str, security: KafkaSecuritySettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        # Required by librdkafka even for assigned partitions; never joined, nothing committed under it.
        "group.id": "query-api.rebuild",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # Bounds the prefetch, per partition (librdkafka's default is 64 MiB each): the rebuild's memory budget.
        "queued.max.messages.kbytes": 4096,
        "fetch.max.bytes": 4 * 1024 * 1024,
        **librdkafka_security(security),
    }


def spans(config: Mapping[str, Any], topics: Sequence[str], stored: Mapping[tuple[str, int], int]) -> list[Span]:
    """Every partition of `topics`, from its stored next offset (else its first) to its high watermark now."""
    consumer = Consumer(dict(config))
    try:
        found: list[Span] = []
        for topic in topics:
            try:
                metadata = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_SECONDS)
            except KafkaException as error:
                raise BrokerUnreachable(f"{config['bootstrap.servers']}: {error}") from error
            partitions = metadata.topics[topic].partitions
            if metadata.topics[topic].error is not None or not partitions:
                raise BrokerUnreachable(f"topic {topic} unknown to {config['bootstrap.servers']}")
            for partition in sorted(partitions):
                try:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=BROKER_TIMEOUT_SECONDS, cached=False
                    )
                except KafkaException as error:
                    raise BrokerUnreachable(f"{config['bootstrap.servers']}: {error}") from error
                found.append(Span(topic, partition, max(stored.get((topic, partition), low), low), high))
        return found
    finally:
        consumer.close()


class SpanReader:
    """Reads `spans` to their ends, in batches; blocking (run it in a thread)."""

    def __init__(self, config: Mapping[str, Any], to_read: Sequence[Span]) -> None:
        # Every partition, even one that looks read to its watermark: the watermark may be short of its end.
        self._remaining = {(s.topic, s.partition): max(s.start, s.end) for s in to_read}
        self._consumer = Consumer(dict(config))
        if self._remaining:
            self._consumer.assign([TopicPartition(s.topic, s.partition, s.start) for s in to_read])

    def next_batch(self, max_records: int) -> list[ConsumerRecord[bytes, bytes]] | None:
        """Up to `max_records` records below their partition's end; None once every span is read."""
        batch: list[ConsumerRecord[bytes, bytes]] = []
        while self._remaining and len(batch) < max_records:
            for message in self._consumer.consume(min(max_records - len(batch), 10_000), timeout=1.0):
                self._take(message, batch)
        return batch if batch or self._remaining else None

    def _take(self, message: Message, batch: list[ConsumerRecord[bytes, bytes]]) -> None:
        key = (message.topic() or "", message.partition() or 0)
        offset, end = message.offset() or 0, self._remaining.get(key)
        if end is None:
            return  # a partition already read to its end: what came since is the live consumer's, after the swap
        if (error := message.error()) is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            if offset >= end:
                self._remaining.pop(key)
            return
        # Records past the watermark are read too: Tansu's watermark can sit below the partition's real end, so
        # the end is where librdkafka finds no more records (an EOF at or past the watermark), not the watermark.
        batch.append(_record(message))

    def close(self) -> None:
        self._consumer.close()


def _record(message: Message) -> ConsumerRecord[bytes, bytes]:
    """The aiokafka record the runtime's applier takes (it stores dead letters and offsets from these fields)."""
    key, value = message.key(), message.value()
    timestamp_type, timestamp = message.timestamp()
    return ConsumerRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp=timestamp,
        timestamp_type=timestamp_type,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key) if key is not None else -1,
        serialized_value_size=len(value) if value is not None else -1,
        headers=message.headers() or [],
    )
