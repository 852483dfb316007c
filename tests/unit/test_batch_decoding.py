"""What the consumer does with a batch before its transaction: decoding (and which records it may skip),
trace contexts for derived events when tracing is off, and the JSON rows the projections are written with."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from opentelemetry import propagate

from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.db import json_rows
from sellthrough_runtime.tracing import ProducerContexts, applying, carrier_for
from tests.support.brand import order

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _unused(conn: Any, events: Any) -> None:
    raise AssertionError("not applied here")


def applier(wanted: set[str]) -> BatchApplier:
    return BatchApplier(pool=None, group_id="decoding-test", handler=_unused, wanted_types=frozenset(wanted))


def record(value: bytes, headers: list[tuple[str, bytes]], offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


def visit() -> Envelope:
    return parse_event(
        {
            **order("O1", [("S1", 1)]),
            "event_type": "VisitRecorded",
            "payload": {
                "visit_id": "V1",
                "outlet_id": "O1",
                "distributor_id": "D1",
                "rep_id": "REP-1",
                "productive": False,
            },
        }
    ).stamped(datetime.now(UTC))


def test_a_record_of_a_known_type_the_consumer_does_not_apply_is_skipped_without_validation() -> None:
    invalid_visit = orjson.dumps({**orjson.loads(encode_event(visit())), "occurred_at": "not a time"})
    batch = applier({"OrderCaptured"}).decode([record(invalid_visit, [("event_type", b"VisitRecorded")])])
    assert (batch.events, batch.dead) == ([], [])


def test_the_header_alone_never_skips_a_record() -> None:
    captured = parse_event(order("O1", [("S1", 2)])).stamped(datetime.now(UTC))
    unknown = orjson.dumps({**orjson.loads(encode_event(visit())), "event_type": "VisitTeleported"})
    batch = applier({"OrderCaptured"}).decode(
        [
            record(encode_event(captured), [("event_type", b"VisitRecorded")], 0),  # the value says otherwise
            record(unknown, [("event_type", b"VisitTeleported")], 1),  # a type no contract knows
            record(encode_event(visit()), [], 2),  # no header: validated, then left out as unwanted
        ]
    )
    assert [event.event_id for _, event in batch.events] == [captured.event_id]
    assert [letter.reason for letter in batch.dead] == ["unknown_event_type"]


def test_a_record_of_a_newer_schema_version_is_a_dead_letter_that_says_so_and_an_older_one_is_upcast() -> None:
    current = orjson.loads(encode_event(parse_event(order("O1", [("S1", 2)])).stamped(datetime.now(UTC))))
    position = {
        **current,
        "event_type": "StockPositionChanged",
        "schema_version": 1,
        "payload": {"distributor_id": "D1", "sku_id": "S1", "on_hand": 3, "value": 31.499999999999996,
                    "as_of": current["occurred_at"], "version": 1},
    }  # fmt: skip
    batch = applier({"OrderCaptured", "StockPositionChanged"}).decode(
        [
            record(orjson.dumps({**current, "schema_version": 4}), [], 0),  # written by a newer writer
            record(orjson.dumps(position), [], 1),  # written by an older one
        ]
    )
    assert [letter.reason for letter in batch.dead] == ["invalid_event"]
    assert "schema_version 4 is not known here" in batch.dead[0].detail
    [(_, upcast)] = batch.events
    assert (upcast.schema_version, upcast.payload.value) == (3, Decimal("10.5") * 3)  # type: ignore[attr-defined]


def test_without_tracing_a_derived_event_carries_its_cause_trace_from_the_kafka_headers() -> None:
    cause, other = parse_event(order("O1", [("S1", 1)])), parse_event(order("O2", [("S2", 1)]))
    contexts = ProducerContexts({cause.event_id: [("traceparent", TRACEPARENT.encode())], other.event_id: None})
    with applying(contexts):
        assert carrier_for(cause.event_id)["traceparent"] == TRACEPARENT
        assert "traceparent" not in carrier_for(other.event_id)  # its producer sent no trace
    expected: dict[str, str] = {}
    propagate.inject(expected)
    assert carrier_for(cause.event_id) == expected  # outside a batch: the current context, as before


def test_json_rows_keep_decimals_and_dates_exact() -> None:
    rows = [
        (date(2026, 11, 20), "O1", Decimal("12345678901234.5678"), 3),
        (date(2026, 1, 2), "O/2", Decimal("0.0001"), 1),
    ]
    assert orjson.loads(json_rows(rows)) == [
        ["2026-11-20", "O1", "12345678901234.5678", 3],
        ["2026-01-02", "O/2", "0.0001", 1],
    ]


def test_a_derived_event_on_another_contract_topic_is_a_dead_letter_not_applied() -> None:
    base = orjson.loads(encode_event(parse_event(order("O1", [("S1", 2)])).stamped(datetime.now(UTC))))
    position = {
        **base,
        "event_type": "StockPositionChanged",
        "schema_version": 2,
        "payload": {"distributor_id": "D1", "sku_id": "S1", "on_hand": 3, "value": "31.5000",
                    "as_of": base["occurred_at"], "version": 9},
    }  # fmt: skip
    value = orjson.dumps(position)
    on_trade = ConsumerRecord("sellthrough.trade.v1", 0, 0, 0, 0, b"D1", value, None, 1, len(value), [])
    on_stock = ConsumerRecord("sellthrough.stock.v1", 0, 0, 0, 0, b"D1", value, None, 1, len(value), [])

    batch = applier({"StockPositionChanged"}).decode([on_trade, on_stock])

    assert [(letter.record.topic, letter.reason) for letter in batch.dead] == [("sellthrough.trade.v1", "wrong_topic")]
    assert "written only to sellthrough.stock.v1" in batch.dead[0].detail
    assert [(r.topic, e.event_type) for r, e in batch.events] == [("sellthrough.stock.v1", "StockPositionChanged")]
