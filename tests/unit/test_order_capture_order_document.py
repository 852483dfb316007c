"""order-capture writes an OrderCaptured's JSON-mode dump by hand (domain/fingerprint.order_document) instead of with
pydantic's serializer. Over generated orders the contract accepts (every optional field present and absent, any
spelling of a price, offsets, fractions): the hand-written dump is pydantic's, byte for byte once encoded, and
the fingerprint and wire form built from it are those the generic path (model_dump, then the canonical walk)
gives."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_capture.domain.edge import fast_order
from order_capture.domain.fingerprint import (
    _body_hash,
    _with_event_id,
    accepted_form,
    json_datetime,
    order_document,
)
from sellthrough_contracts import Envelope, upcast_document
from sellthrough_contracts.trade import OrderCaptured
from tests.unit.test_order_capture_edge_decoding import contract, documents

RECORDED_AT = (
    datetime(2026, 12, 5, 10, 0, 0, 123456, UTC),
    datetime(2026, 12, 5, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
)


def generic_form(event: Envelope, recorded_at: datetime) -> tuple[bytes, bytes, bytes]:
    """(content hash, body hash, wire form) as accepted_form computed them for every event type before."""
    document = event.model_dump(mode="json")
    canonical = dict(document)
    del canonical["recorded_at"], canonical["key"]
    body_hash = _body_hash(event, canonical)
    document["recorded_at"] = json_datetime(recorded_at)
    document["key"] = event.partition_key()
    return _with_event_id(event, body_hash), body_hash, orjson.dumps(document)


def holds_alike(event: Envelope) -> None:
    assert isinstance(event, OrderCaptured)
    assert orjson.dumps(order_document(event)) == orjson.dumps(event.model_dump(mode="json"))
    for at in RECORDED_AT:
        accepted = accepted_form(event, at)
        assert (accepted.content_hash, accepted.body_hash, accepted.value) == generic_form(event, at)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_the_hand_written_dump_is_pydantics(document: dict[str, Any]) -> None:
    raw = upcast_document(document)
    encoded = orjson.dumps(raw)
    model = contract(encoded)
    if isinstance(model, OrderCaptured):
        holds_alike(model)
    fast = fast_order(raw, encoded)
    if fast is not None:
        holds_alike(fast)


@settings(max_examples=300, deadline=None)
@given(
    price=st.one_of(
        st.decimals(min_value=0, max_value=10**10 - 1, places=4, allow_nan=False).map(str),
        st.sampled_from(["0", "0.0000", "007.10", "12.5", "12.50", "1E+2", "100"]),
        st.integers(0, 10**6),
    ),
    gps=st.sampled_from([None, {"lat": 28.6, "lon": 77, "accuracy_m": None}, {"lat": -0.0, "lon": 1e-7}]),
    optional=st.fixed_dictionaries(
        {},
        optional={
            "recorded_at": st.just("2026-12-01T10:00:00.5+05:30"),
            "key": st.just("K"),
            "causation_id": st.uuids().map(str),
        },
    ),
    visit_id=st.sampled_from([None, "V1"]),
    occurred_at=st.sampled_from(
        ["2026-11-01T04:13:00Z", "2026-11-01T04:13:00.000001-04:00", "2026-11-01T04:13:00+00:00"]
    ),
)
def test_every_optional_field_and_spelling(
    price: Any, gps: dict[str, Any] | None, optional: dict[str, Any], visit_id: str | None, occurred_at: str
) -> None:
    document = {
        "event_id": "6f1c3d9e-55a0-4c55-9b1e-0d6f5a4a2b10",
        "event_type": "OrderCaptured",
        "schema_version": 3,
        "occurred_at": occurred_at,
        "source": "device-1",
        "actor": "R1",
        "payload": {
            "order_id": "O1",
            "outlet_id": "OUT1",
            "distributor_id": "D1",
            "rep_id": "R1",
            "visit_id": visit_id,
            "gps": gps,
            "mock_location": gps is not None,
            "lines": [
                {"sku_id": "S1", "quantity": 3, "unit_price": price},
                {"sku_id": "S2", "quantity": 1, "unit_price": "1.5"},
            ],
            **({} if visit_id is None else {"currency": "INR"}),  # the brand's, said or left out
        },
        **optional,
    }
    model = contract(orjson.dumps(document))
    assert isinstance(model, OrderCaptured), document
    holds_alike(model)
