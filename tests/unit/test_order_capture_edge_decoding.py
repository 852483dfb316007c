"""order-capture reads an OrderCaptured at the edge with msgspec (domain/edge.py) and leaves everything it is not sure
of to the contract model. Over generated orders, valid and broken: whatever msgspec accepts the contract accepts,
as an equal event with the same fingerprint and wire form; and the orders clients really send take the fast path."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from order_capture.domain.clock import Window
from order_capture.domain.edge import fast_order
from order_capture.domain.fingerprint import _canonical_order, _canonical_walk, accepted_form, content_hash
from order_capture.domain.validation import parse
from sellthrough_contracts import AnyEvent, Envelope, upcast_document
from tests.support.brand import order

_EVENTS: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def window() -> Window:
    """Now, as the server reads it when a batch arrives: taken per call, since a suite on a busy machine runs
    these tests long after import (a window fixed then puts fresh events "in the future")."""
    return Window(datetime.now(UTC), timedelta(days=400), timedelta(minutes=5), "admin")


def mostly(valid: st.SearchStrategy[Any], *broken: Any) -> st.SearchStrategy[Any]:
    """A valid value 19 times in 20, else one of `broken` (values or strategies): most documents break one rule
    or none, so both paths are exercised near the edges of every rule."""
    wrong = st.one_of(*[b if isinstance(b, st.SearchStrategy) else st.just(b) for b in broken])
    return st.integers(0, 19).flatmap(lambda n: valid if n else wrong)


valid_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}\Z")
ids = mostly(
    valid_ids,
    st.sampled_from(["", "-A", "A B", "A\n", "Ä1", "A" * 65, "A" * 64, "O1\n", "A\u0000"]),
    st.text(max_size=70),
    st.integers(-(2**63), 2**63 - 1),
    None,
)
uuids = mostly(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.sampled_from(["not-a-uuid", "", "00000000-0000-0000-0000-00000000000g"]),
    st.integers(-(2**63), 2**63 - 1),
)
_moment = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.sampled_from([UTC, None])
)
timestamps = mostly(
    st.builds(
        lambda d, fraction, zone: d.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone,
        _moment,
        st.sampled_from(["", ".5", ".123456", ".000001"]),
        st.sampled_from(["Z", "+00:00", "+05:30", "-04:00"]),
    ),
    st.builds(
        lambda d, fraction, zone, sep: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + zone,
        _moment,
        st.sampled_from(["", ".5", ".1234567", ".000000001", "."]),
        st.sampled_from(["Z", "z", "-00:00", "", "+0530", "+24:00"]),
        st.sampled_from(["T", " ", "t"]),
    ),
    _moment.map(lambda d: d.isoformat()),
    st.sampled_from(["2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T10:00Z"]),
    st.integers(0, 2_000_000_000),
)
strings = mostly(
    st.text(min_size=1, max_size=64),
    st.text(min_size=0, max_size=130),
    st.sampled_from(["", "x" * 128, "x" * 129, "y" * 64, "y" * 65, "\U0001f600" * 64, "\U0001f600" * 65]),
)
prices = mostly(
    st.decimals(min_value=0, max_value=10**10 - 1, places=2, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**10 - 1, places=4, allow_nan=False).map(str),
    st.sampled_from(
        ["12.50", "1.50000", "0", "-0", "-1", "1e2", "1E+20", " 1", "1_0", "NaN", "Infinity", "+1", "0.0001", "0.00001"]
    ),
    st.sampled_from(["12345678901.5", "9999999999.9999", "1234567890123.0", "00012.5", ".5", "5.", "0012345678901"]),
    st.sampled_from(["1.12345", "10000000000", "99999999999", "1.10000", "0.00010"]),
    st.floats(min_value=-1, max_value=1e12, allow_nan=False),
    st.integers(-1, 10**15),
    st.booleans(),
)
quantities = mostly(st.integers(1, 1_000_000), 0, -1, 1_000_001, 3.0, "3", True, None)
coordinates = mostly(
    st.floats(-90, 90),
    st.floats(-200, 200, allow_nan=False),
    st.integers(-200, 200),
    st.sampled_from([-90.0000001, 90.0000001, -91, 91, 180.5, -180.5, -90, 90]),
    True,
    "1",
)


def maybe(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """{key: value} or {} (the field left out)."""
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


def merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


def rarely(key: str, value: Any) -> st.SearchStrategy[dict[str, Any]]:
    """An unknown field, now and then."""
    return mostly(st.just({}), {key: value})


lines = merged(
    st.fixed_dictionaries({"sku_id": ids, "quantity": quantities, "unit_price": prices}),
    rarely("discount", "1"),
)
gps = st.one_of(
    st.none(),
    merged(
        st.fixed_dictionaries({"lat": coordinates, "lon": coordinates}),
        maybe("accuracy_m", mostly(st.floats(0, 100_000), None, st.floats(-10, 200_000), st.integers(-5, 200_000))),
        rarely("altitude", 1),
    ),
)
payloads = merged(
    st.fixed_dictionaries({"order_id": ids, "outlet_id": ids, "distributor_id": ids, "rep_id": ids}),
    st.fixed_dictionaries({"lines": mostly(st.lists(lines, min_size=1, max_size=4), [])}),
    maybe("visit_id", mostly(valid_ids, None, "A B")),
    maybe("gps", gps),
    maybe("mock_location", mostly(st.booleans(), 0, "true", None)),
    rarely("note", "x"),
)
documents = merged(
    st.fixed_dictionaries(
        {
            "event_id": uuids,
            "event_type": mostly(st.just("OrderCaptured"), "VisitRecorded", "Nope"),
            "occurred_at": timestamps,
            "source": strings,
            "actor": strings,
            "payload": payloads,
        }
    ),
    maybe("schema_version", mostly(st.sampled_from([1, 2]), 3, "2", True, 2.0, None)),
    maybe("recorded_at", st.one_of(st.none(), timestamps)),
    maybe("key", st.one_of(st.none(), strings)),
    maybe("causation_id", st.one_of(st.none(), uuids)),
    rarely("extra", 1),
)


def contract(encoded: bytes) -> Envelope | None:
    try:
        return _EVENTS.validate_json(encoded, strict=True)
    except ValidationError:
        return None


def same_event(fast: Envelope, model: Envelope) -> None:
    assert fast == model
    assert fast.model_dump(mode="json") == model.model_dump(mode="json")
    assert fast.model_dump() == model.model_dump()
    assert fast.model_fields_set == model.model_fields_set
    fast_payload, payload = getattr(fast, "payload", None), getattr(model, "payload", None)
    assert fast_payload is not None
    assert payload is not None
    assert fast_payload.model_fields_set == payload.model_fields_set
    assert content_hash(fast) == content_hash(model)
    at = datetime.now(UTC)
    assert accepted_form(fast, at)[1:] == accepted_form(model, at)[1:]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_what_msgspec_accepts_the_contract_accepts_as_the_same_event(document: dict[str, Any]) -> None:
    raw = upcast_document(document)
    encoded = orjson.dumps(raw)
    fast = fast_order(raw, encoded)
    model = contract(encoded)
    event(f"msgspec {'accepts' if fast else 'defers'}, the contract {'accepts' if model else 'refuses'}")
    if fast is None:
        return
    assert model is not None, f"msgspec accepted what the contract refuses: {document}"
    same_event(fast, model)


@settings(max_examples=300, deadline=None)
@given(
    price=st.decimals(min_value=0, max_value=10**10 - 1, places=2, allow_nan=False),
    quantity=st.integers(1, 1_000_000),
    with_gps=st.booleans(),
    version=st.sampled_from([None, 1, 2]),
    minutes_ago=st.integers(0, 60 * 24 * 90),
)
def test_orders_as_clients_send_them_take_the_fast_path_and_parse_alike(
    price: Any, quantity: int, with_gps: bool, version: int | None, minutes_ago: int
) -> None:
    document = order("O1", [("S1", quantity), ("S2", 1)])
    document["occurred_at"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    document["payload"]["lines"][0]["unit_price"] = str(price)
    document["payload"]["gps"] = {"lat": 28.6, "lon": 77.2, "accuracy_m": 12} if with_gps else None
    if version is None:
        document.pop("schema_version", None)
    else:
        document["schema_version"] = version
        if version == 1:
            document["payload"].pop("mock_location", None)
    raw = upcast_document(document)
    encoded = orjson.dumps(raw)
    fast = fast_order(raw, encoded)
    assert fast is not None, document
    model = contract(encoded)
    assert model is not None
    same_event(fast, model)
    parsed = parse(document, window())
    assert isinstance(parsed, Envelope)
    assert parsed == model


def test_a_broken_order_is_worded_by_the_contract() -> None:
    document = order("O1", [("S1", 0)])
    document["payload"]["lines"][0]["unit_price"] = "-1"
    rejection = parse(document, window())
    assert not isinstance(rejection, Envelope)
    assert rejection.reason == "invalid_fields"
    assert {e["field"] for e in rejection.errors} == {"payload.lines.0.quantity", "payload.lines.0.unit_price"}
    assert rejection.event_id == uuid.UUID(document["event_id"])


def test_too_many_lines_and_an_id_with_a_final_newline_are_left_to_the_contract() -> None:
    many = order("O1", [("S1", 1)])
    many["payload"]["lines"] = many["payload"]["lines"] * 501
    newline = order("O1", [("S1", 1)])
    newline["payload"]["order_id"] += "\n"
    for document in (many, newline):
        raw = upcast_document(document)
        assert fast_order(raw, orjson.dumps(raw)) is None
        assert contract(orjson.dumps(raw)) is None


BOUNDARIES: list[tuple[tuple[str | int, ...], Any]] = [
    *[(("payload", "gps", axis), value) for axis in ("lat", "lon") for value in (-90.0000001, 90.0000001, 180.0000001)],
    *[(("payload", "gps", "lat"), value) for value in (-91, 91, -90, 90, True, "1")],
    *[(("payload", "gps", "accuracy_m"), value) for value in (-0.0001, 100_000.0001, 100_000, 0, None, False)],
    *[(("payload", "lines", 0, "unit_price"), value) for value in ("0.00001", "1.12345", "10000000000", "9999999999")],
    *[(("payload", "lines", 0, "unit_price"), value) for value in ("-0.0001", "1.10000", "0.00010", 1.5, 2, "1e1")],
    *[(("payload", "lines", 0, "quantity"), value) for value in (0, -1, 1_000_000, 1_000_001, 2.0, "2", True)],
    *[(("payload", field), value) for field in ("order_id", "outlet_id", "rep_id") for value in ("A" * 64, "A" * 65)],
    *[(("payload", "order_id"), value) for value in ("a:b/c-d.e_f", "_A", "A\n", "A\r", "A b", "", 1, None)],
    *[(("payload", "visit_id"), value) for value in (None, "V1", "V 1", "")],
    *[(("payload", "mock_location"), value) for value in (True, False, 0, 1, "false", None)],
    *[((field,), value) for field in ("source", "actor") for value in ("", "x" * 64, "x" * 65, "x" * 128, "x" * 129)],
    *[(("key",), value) for value in (None, "k" * 128, "k" * 129, 1)],
    *[(("schema_version",), value) for value in (1, 2, 3, 0, "2", 2.0, True, None)],
    *[(("occurred_at",), value) for value in ("2026-01-01T10:00:00.1234567Z", "2026-01-01T10:00:00", "2026-01-01")],
    *[(("recorded_at",), value) for value in (None, "2026-01-01T10:00:00+05:30", "2026-01-01T10:00:00", 0)],
    *[(("causation_id",), value) for value in (None, "00000000-0000-0000-0000-000000000000", "x")],
    *[(("event_id",), value) for value in ("00000000000000000000000000000000", "x", "")],
]


@pytest.mark.parametrize(("path", "value"), BOUNDARIES, ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v in BOUNDARIES])
def test_each_rule_at_its_edge(path: tuple[str | int, ...], value: Any) -> None:
    document = order("O1", [("S1", 1), ("S2", 2)])
    document["payload"]["gps"] = {"lat": 28.6, "lon": 77.2, "accuracy_m": 12.5}
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    raw = upcast_document(document)
    encoded = orjson.dumps(raw)
    fast, model = fast_order(raw, encoded), contract(encoded)
    if fast is not None:
        assert model is not None, "msgspec accepted what the contract refuses"
        same_event(fast, model)


@settings(max_examples=300, deadline=None)
@given(
    prices=st.lists(
        st.one_of(
            st.decimals(min_value=0, max_value=10**10 - 1, places=4, allow_nan=False).map(str),
            st.sampled_from(["12.50", "12.5000", "1.25E+1", "0", "-0", "0.0000", "100", "1E+2", "0E-4"]),
            st.floats(0, 1e9).map(lambda f: round(f, 2)),
            st.integers(0, 10**9),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_an_orders_canonical_form_is_the_generic_walks(prices: list[Any]) -> None:
    document = order("O1", [("S1", 1)] * len(prices))
    for line, price in zip(document["payload"]["lines"], prices, strict=True):
        line["unit_price"] = price
    model = contract(orjson.dumps(upcast_document(document)))
    if model is None:
        return  # beyond Money's bounds
    dumped = model.model_dump(mode="json")
    assert _canonical_order(dict(dumped)) == _canonical_walk(model, dict(dumped))
