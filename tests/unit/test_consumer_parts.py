"""How the consumer cuts a fetched batch into parts applied in transactions of their own (asynchronous commit):
whole partitions only (each part stores its own partitions' offsets), about as many records each."""

from aiokafka import ConsumerRecord, TopicPartition

from sellthrough_runtime.consumer import _split


def _batch(sizes: dict[int, int]) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    return {
        TopicPartition("t", p): [ConsumerRecord("t", p, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in range(n)]
        for p, n in sizes.items()
    }


def test_parts_hold_whole_partitions_of_about_as_many_records() -> None:
    batch = _batch({0: 700, 1: 500, 2: 300, 3: 300, 4: 200})
    parts = _split(batch, 2)
    assert sorted(tp.partition for part in parts for tp in part) == [0, 1, 2, 3, 4], "each partition in one part"
    sizes = sorted(sum(len(batch[tp]) for tp in part) for part in parts)
    assert sizes == [1000, 1000]


def test_one_part_keeps_the_client_order_and_no_part_is_empty() -> None:
    batch = _batch({3: 1, 0: 5, 7: 2})
    assert _split(batch, 1) == [[TopicPartition("t", 3), TopicPartition("t", 0), TopicPartition("t", 7)]]
    assert _split(_batch({0: 4}), 2) == [[TopicPartition("t", 0)]]
    assert _split({}, 2) == []
    assert _split({}, 1) == []
