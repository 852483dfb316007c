import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from sellthrough_contracts import EVENT_TYPES, TOPICS, decode_event, encode_event, parse_event, topic_for
from sellthrough_contracts.trade import OrderCaptured
from tests.support.brand import order, reference_events


def test_every_event_type_travels_on_exactly_one_topic() -> None:
    carried = [event_type for topic in TOPICS for event_type in topic.event_types]
    assert sorted(carried) == sorted(EVENT_TYPES)
    assert len(carried) == len(set(carried))


def test_an_order_round_trips_through_its_wire_form_unchanged() -> None:
    event = parse_event(order("O1", [("S1", 3), ("S3", 1)])).stamped(datetime(2026, 11, 1, tzinfo=UTC))
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded, OrderCaptured)
    assert decoded.payload.lines[0].unit_price == Decimal("10.50")


def test_stamping_sets_server_time_and_the_distributor_as_partition_key() -> None:
    event = parse_event(order("O4", [("S1", 1)]))
    stamped = event.stamped(datetime(2026, 11, 1, tzinfo=UTC))
    assert (event.key, event.recorded_at) == (None, None)
    assert stamped.key == "D3"
    assert topic_for(stamped.event_type).name == "sellthrough.trade.v1"


def test_reference_events_are_keyed_by_their_entity() -> None:
    keys = {parse_event(e).partition_key() for e in reference_events()}
    assert {"Z1", "R1", "D1", "O1", "S1", "REP-1"} <= keys


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("event_type",), "SomethingElse"),
        (("occurred_at",), "2026-11-01T10:00:00"),  # no time zone
        (("payload", "lines", 0, "quantity"), 0),
        (("payload", "lines", 0, "unit_price"), "-1"),
        (("payload", "outlet_id"), "has spaces"),
        (("payload", "gps", "lat"), 95),
        (("payload", "unexpected"), "field"),
    ],
)
def test_invalid_events_do_not_parse(path: tuple[object, ...], value: object) -> None:
    raw = order("O1", [("S1", 1)])
    target: object = raw
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_readers_ignore_fields_added_by_newer_writers_but_clients_may_not_send_unknown_ones() -> None:
    raw = order("O1", [("S1", 2)])
    raw["added_later"] = "x"
    raw["payload"]["lines"][0]["discount_code"] = "NEW"
    decoded = decode_event(orjson.dumps(raw))
    assert isinstance(decoded, OrderCaptured)
    assert decoded.payload.lines[0].quantity == 2
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_event_type_names_are_stable_strings_not_class_paths() -> None:
    for name, cls in EVENT_TYPES.items():
        assert "." not in name
        assert cls.model_fields["event_type"].default == name
    assert parse_event(order("O1", [("S1", 1)]) | {"event_id": str(uuid.uuid4())}).event_type == "OrderCaptured"
