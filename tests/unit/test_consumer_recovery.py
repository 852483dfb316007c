"""ConsumerRecovery's rules on an in-memory stand-in of the Kafka client (positions, ends): where a partition is
positioned from what was stored, and which records of a fetched batch are kept. Against the real broker and
Postgres: tests/integration/test_exactly_once_consumer.py."""

from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from sellthrough_runtime.log_recovery import (
    GENERATION_HEADER,
    ConsumerRecovery,
    StoredOffsets,
    StoredPosition,
    record_digest,
)

TP = TopicPartition("t", 0)
BEGINNING = -1


class FakeKafka:
    def __init__(self, end: int | None) -> None:
        self.end = end
        """None: the broker does not answer where partitions end."""
        self.positions: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self.end is None:
            raise KafkaConnectionError("no answer")
        return {tp: self.end for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.positions[tp] = BEGINNING

    def resume(self, tp: TopicPartition) -> None: ...


def record(offset: int, value: bytes, generation: str | None = None) -> ConsumerRecord[bytes, bytes]:
    headers = [] if generation is None else [(GENERATION_HEADER, generation.encode())]
    return ConsumerRecord(TP.topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


def recovery(kafka: FakeKafka, stored: StoredOffsets) -> ConsumerRecovery:
    async def read_stored() -> StoredOffsets:
        return stored

    return ConsumerRecovery(kafka, read_stored, group_id="unit", member="unit")  # type: ignore[arg-type]


def applied_up_to(last: ConsumerRecord[bytes, bytes], generations: dict[str, int] | None = None) -> StoredOffsets:
    return {(TP.topic, TP.partition): StoredPosition(last.offset + 1, record_digest(last), generations or {})}


async def test_nothing_stored_reads_from_the_beginning() -> None:
    kafka = FakeKafka(end=10)
    await recovery(kafka, {}).position([TP])
    assert kafka.positions[TP] == BEGINNING


async def test_the_last_applied_record_is_read_again_and_dropped_when_it_matches() -> None:
    last, following = record(4, b"applied"), record(5, b"new")
    kafka = FakeKafka(end=6)
    screening = recovery(kafka, applied_up_to(last))
    await screening.position([TP])
    assert kafka.positions[TP] == 4
    assert await screening.screen({TP: [last, following]}) == {TP: [following]}


async def test_another_record_at_that_offset_sends_the_partition_to_the_beginning() -> None:
    kafka = FakeKafka(end=6)
    screening = recovery(kafka, applied_up_to(record(4, b"applied")))
    await screening.position([TP])
    assert await screening.screen({TP: [record(4, b"other"), record(5, b"new")]}) == {}
    assert kafka.positions[TP] == BEGINNING


async def test_a_stored_offset_beyond_the_end_without_a_digest_reads_from_the_beginning() -> None:
    kafka = FakeKafka(end=3)
    await recovery(kafka, {(TP.topic, TP.partition): StoredPosition(10, None, {})}).position([TP])
    assert kafka.positions[TP] == BEGINNING


async def test_unknown_ends_make_the_last_applied_record_prove_itself() -> None:
    """The broker does not say where the partition ends: positioned to verify, and the record arriving settles
    it (as for an end understated by Tansu)."""
    last = record(4, b"applied")
    kafka = FakeKafka(end=None)
    screening = recovery(kafka, applied_up_to(last))
    await screening.position([TP])
    assert kafka.positions[TP] == 4
    assert await screening.screen({TP: [last]}) == {TP: []}


async def test_a_raised_outbox_generation_sends_the_partition_to_the_beginning() -> None:
    last = record(4, b"applied", "order-capture:0")
    kafka = FakeKafka(end=6)
    screening = recovery(kafka, applied_up_to(last, {"order-capture": 0}))
    await screening.position([TP])
    assert await screening.screen({TP: [last, record(5, b"republished", "order-capture:1")]}) == {}
    assert kafka.positions[TP] == BEGINNING
    assert screening.generations[(TP.topic, TP.partition)] == {"order-capture": 1}
