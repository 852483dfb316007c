"""The lean structs (sellthrough_contracts.lean) stay in step with the contracts they read, and query-api's decoder
uses them only for what they can read, the full contract for everything else."""

import types
import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ValidationError

from query_api.projections.handler import ProjectionHandler
from query_api.projections.sales import prepare_sales
from sellthrough_contracts import Envelope, decode_event, encode_event, parse_event
from sellthrough_contracts.lean import LEAN_CONTRACTS, LeanEvent, decode_lean
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_contracts.versions import current_version
from tests.support.brand import event, order, reference_events


def _bare(annotation: Any) -> tuple[Any, list[Any]]:
    """The type without Annotated metadata, and that metadata."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata.extend(more)
    return annotation, metadata


def _options(annotation: Any) -> list[tuple[Any, list[Any]]]:
    """The members of a union (X | None), else the type itself, each with its Annotated metadata."""
    annotation, metadata = _bare(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return [_bare(a) for a in get_args(annotation)]
    return [(annotation, metadata)]


def _compatible(lean: Any, contract: Any, where: str) -> None:
    """Every value of the lean type is one of the contract type (the lean type may be narrower)."""
    lean_options, contract_options = _options(lean), _options(contract)
    assert len(lean_options) == len(contract_options), f"{where}: {lean} against {contract}"
    for (lean_type, lean_meta), (contract_type, _) in zip(lean_options, contract_options, strict=True):
        if isinstance(lean_type, type) and issubclass(lean_type, msgspec.Struct):
            assert isinstance(contract_type, type), where
            assert issubclass(contract_type, BaseModel), where
            _same_fields(lean_type, contract_type, where)
        elif contract_type is AwareDatetime:
            assert lean_type is datetime, where
            assert msgspec.Meta(tz=True) in lean_meta, f"{where}: a time zone is required"
        elif get_origin(lean_type) is list:
            assert get_origin(contract_type) is list, where
            _compatible(get_args(lean_type)[0], get_args(contract_type)[0], f"{where}[]")
        elif get_origin(lean_type) is Literal and get_origin(contract_type) is Literal:
            assert set(get_args(lean_type)) <= set(get_args(contract_type)), where
        elif get_origin(lean_type) is Literal:
            assert all(isinstance(value, contract_type) for value in get_args(lean_type)), where
        else:
            assert lean_type is contract_type, f"{where}: {lean_type} against {contract_type}"


def _same_fields(lean: type[msgspec.Struct], contract: type[BaseModel], where: str) -> None:
    hints = typing.get_type_hints(lean, include_extras=True)
    for field in msgspec.structs.fields(lean):
        assert field.name in contract.model_fields, f"{where}.{field.name} is not in {contract.__name__}"
        _compatible(hints[field.name], contract.model_fields[field.name].annotation, f"{where}.{field.name}")


@pytest.mark.parametrize("lean", list(LEAN_CONTRACTS), ids=lambda cls: cls.__name__)
def test_every_lean_field_is_a_field_of_its_contract_with_a_compatible_type(lean: type[LeanEvent]) -> None:
    contract = LEAN_CONTRACTS[lean]
    assert lean.event_type == contract.type_name()
    # The one schema version the lean struct reads is its contract's current one: older ones need upcasting.
    assert get_args(typing.get_type_hints(lean)["schema_version"]) == (current_version(contract),)
    _same_fields(lean, contract, lean.__name__)


def test_every_contract_a_lean_struct_reads_is_mapped_once() -> None:
    assert len(set(LEAN_CONTRACTS.values())) == len(LEAN_CONTRACTS)


def _equal_where_lean(lean: Any, full: Any, where: str) -> None:
    """The lean value equals the contract's, field by field, for every field the lean struct keeps."""
    if isinstance(lean, msgspec.Struct):
        for name in lean.__struct_fields__:
            _equal_where_lean(getattr(lean, name), getattr(full, name), f"{where}.{name}")
    elif isinstance(lean, list):
        assert len(lean) == len(full), where
        for i, (a, b) in enumerate(zip(lean, full, strict=True)):
            _equal_where_lean(a, b, f"{where}[{i}]")
    else:
        assert lean == full, f"{where}: {lean!r} != {full!r}"
        assert type(lean) is type(full), where


ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}\Z")
quantities = st.integers(min_value=1, max_value=1_000_000)
prices = st.decimals(min_value=0, max_value=Decimal("99999999.9999"), places=4).map(str)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("Asia/Kolkata")]),
)
points = st.none() | st.fixed_dictionaries(
    {"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)},
    optional={"accuracy_m": st.none() | st.floats(0, 100_000)},
)


def _lines(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.fixed_dictionaries({"sku_id": ids, **fields}), min_size=1, max_size=5)


payloads = st.one_of(
    st.tuples(
        st.just("OrderCaptured"),
        st.fixed_dictionaries(
            {
                "order_id": ids,
                "outlet_id": ids,
                "distributor_id": ids,
                "rep_id": ids,
                "lines": _lines(quantity=quantities, unit_price=prices),
            },
            optional={"visit_id": st.none() | ids, "gps": points, "mock_location": st.booleans()},
        ),
    ),
    st.tuples(
        st.just("OrderCancelled"),
        st.fixed_dictionaries({"order_id": ids, "outlet_id": ids, "distributor_id": ids, "reason": st.just("closed")}),
    ),
    st.tuples(
        st.just("OrderDelivered"),
        st.fixed_dictionaries(
            {
                "delivery_id": ids,
                "order_id": ids,
                "outlet_id": ids,
                "distributor_id": ids,
                "lines": _lines(quantity=st.integers(min_value=0, max_value=1_000_000)),
            }
        ),
    ),
    st.tuples(
        st.just("ReturnRecorded"),
        st.fixed_dictionaries(
            {
                "return_id": ids,
                "distributor_id": ids,
                "direction": st.sampled_from(["from_retailer", "to_company"]),
                "reason": st.sampled_from(["damaged", "expired", "unsold"]),
                "lines": _lines(quantity=quantities),
            },
            optional={"outlet_id": st.none() | ids},
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(payloads, moments, st.none() | moments)
def test_decoding_an_event_lean_gives_the_contracts_values_for_every_field_kept(
    typed_payload: tuple[str, dict[str, Any]], occurred_at: datetime, recorded_at: datetime | None
) -> None:
    event_type, payload = typed_payload
    full = parse_event(event(event_type, payload, occurred_at=occurred_at))
    if recorded_at is not None:
        full = full.stamped(recorded_at)
    raw = encode_event(full)
    lean = decode_lean(raw)
    assert lean is not None
    assert LEAN_CONTRACTS[type(lean)] is type(full)
    _equal_where_lean(lean, decode_event(raw), type(lean).__name__)


def test_the_sales_projection_prepares_the_same_writes_from_either_reading() -> None:
    events = [parse_event(order("O1", [("S1", 3), ("S3", 1)])).stamped(datetime(2026, 11, 1, tzinfo=UTC))]
    events.append(
        parse_event(
            event(
                "ReturnRecorded",
                {
                    "return_id": "R1",
                    "distributor_id": "D1",
                    "outlet_id": "O1",
                    "direction": "from_retailer",
                    "reason": "damaged",
                    "lines": [{"sku_id": "S1", "quantity": 2}],
                },
            )
        )
    )
    handler = ProjectionHandler(ZoneInfo("Asia/Kolkata"))
    lean = [handler.decode_event(encode_event(e)) for e in events]
    assert all(isinstance(e, LeanEvent) for e in lean)
    assert prepare_sales(lean, ZoneInfo("Asia/Kolkata")) == prepare_sales(events, ZoneInfo("Asia/Kolkata"))
    assert handler.prepare(lean).steps
    assert handler.prepare(lean) == handler.prepare(events)


def test_an_event_without_schema_version_is_read_as_current_as_the_contract_reads_it() -> None:
    raw = msgspec.json.encode(order("O1", [("S1", 1)]))
    assert b"schema_version" not in raw
    lean = decode_lean(raw)
    assert lean is not None
    _equal_where_lean(lean, decode_event(raw), "no-version")


def _order_raw(**changes: Any) -> dict[str, Any]:
    raw = order("O1", [("S1", 1)])
    return raw | changes


@pytest.mark.parametrize(
    "document",
    [
        # Another type: reference data has no lean struct.
        reference_events()[0],
        # Version 1, before mock_location: the contract upcasts it.
        _order_raw(schema_version=1),
    ],
    ids=["other-type", "older-version"],
)
def test_the_decoder_falls_back_to_the_contract_for_what_it_cannot_read_lean(document: dict[str, Any]) -> None:
    raw = msgspec.json.encode(document)
    assert decode_lean(raw) is None
    decoded = ProjectionHandler(ZoneInfo("UTC")).decode_event(raw)
    assert isinstance(decoded, Envelope)
    assert decoded == decode_event(raw)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("payload", "lines", 0, "quantity"), 0),
        (("payload", "lines"), []),
        (("occurred_at",), "2026-11-01T10:00:00"),  # no time zone
        (("event_id",), "not-a-uuid"),
        (("payload", "rep_id"), None),
    ],
)
def test_an_invalid_trade_event_is_refused_with_the_contracts_reason(path: tuple[Any, ...], value: Any) -> None:
    document: dict[str, Any] = {**parse_event(order("O1", [("S1", 1)])).model_dump(mode="json")}
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    raw = msgspec.json.encode(document)
    assert decode_lean(raw) is None
    with pytest.raises(ValidationError):
        ProjectionHandler(ZoneInfo("UTC")).decode_event(raw)


def test_a_lean_order_has_what_the_applier_reads() -> None:
    full = parse_event(order("O1", [("S1", 1)])).stamped(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=1))
    lean = decode_lean(encode_event(full))
    assert isinstance(lean, LeanEvent)
    assert (lean.event_type, lean.event_id, lean.occurred_at, lean.recorded_at) == (
        full.event_type,
        full.event_id,
        full.occurred_at,
        full.recorded_at,
    )
    assert isinstance(full, OrderCaptured)
