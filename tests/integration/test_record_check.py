"""The check run after every e2e module (tests/support/record_check.py) finds each record that breaks its
released schema, on a real broker."""

from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer

from sellthrough_contracts import encode_event, parse_event, topic_for
from tests.conftest import Infra
from tests.support.brand import order, reference_events
from tests.support.record_check import contract_breaches


def sku(**changes: object) -> bytes:
    raw = next(e for e in reference_events() if e["event_type"] == "SkuRegistered")
    event = parse_event(raw).stamped(datetime.now(UTC))
    document = orjson.loads(encode_event(event))
    document.update(changes)
    return orjson.dumps(document)


async def test_every_record_that_breaks_its_released_schema_is_reported(infra: Infra) -> None:
    reference, trade = topic_for("SkuRegistered").name, topic_for("OrderCaptured").name
    good_order = encode_event(parse_event(order("O1", [("S1", 2)])).stamped(datetime.now(UTC)))
    # The mistake the check exists for: fields added to SkuRegistered while it was still labelled version 1.
    v1_with_later_fields = sku(schema_version=1)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for topic, value in [
            (trade, good_order),
            (reference, sku()),
            (reference, v1_with_later_fields),
            (reference, sku(schema_version=7)),
            (trade, sku()),
            (trade, b"not json"),
        ]:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()

    read, breaches = contract_breaches(infra.kafka_bootstrap_servers)

    assert read == 6
    assert len(breaches) == 4, breaches
    joined = "\n".join(breaches)  # in no particular order: partitions are read side by side
    assert "SkuRegistered v1 at $.payload: Additional properties are not allowed" in joined
    assert "no released schema for SkuRegistered schema_version 7" in joined
    assert f"SkuRegistered belongs on {reference}" in joined
    assert "not JSON" in joined
