"""Schema versions and upcasters: older records are read in the current shape, newer ones are refused, and what
writers emit validates against the released schema of the version they stamp."""

import json
import uuid
from decimal import Decimal
from typing import Any

import jsonschema
import orjson
import pytest
from pydantic import ValidationError

from sellthrough_contracts import EVENT_TYPES, decode_event, encode_event, parse_event
from sellthrough_contracts.envelope import Upcast
from sellthrough_contracts.reference import RepRegistered, SkuRegistered
from sellthrough_contracts.schemas import SCHEMAS_DIR
from sellthrough_contracts.schemes import ClaimAssessed
from sellthrough_contracts.stock import StockPositionChanged, StockVarianceRecorded
from sellthrough_contracts.trade import StockCounted
from sellthrough_contracts.versions import UNKNOWN_SCHEMA_VERSION, current_version

AT = "2026-03-01T10:00:00Z"


def released(event_type: str, version: int) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / "released" / f"{event_type}.v{version}.json").read_text())
    return schema


def record(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A record as a writer of `version` put it on the wire."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": version,
        "occurred_at": AT,
        "recorded_at": AT,
        "source": "writer",
        "actor": "writer",
        "key": "D1",
        "causation_id": None,
        "payload": payload,
    }


def decoded(document: dict[str, Any]) -> Any:
    return decode_event(orjson.dumps(document))


SKU_V1 = {"sku_id": "S1", "name": "Tea", "brand": "Sunrise", "category": "Tea", "list_price": "10.5000"}
COUNT_V1 = {
    "count_id": "C1",
    "distributor_id": "D1",
    "outlet_id": None,
    "counted_at": AT,
    "lines": [{"sku_id": "S1", "quantity": 4}],
}
POSITION_V1 = {
    "distributor_id": "D1",
    "sku_id": "S1",
    "on_hand": 723868,
    "value": 7600631.990000007,
    "as_of": AT,
    "version": 3,
}
REP_V1 = {"rep_id": "REP-1", "name": "Asha", "distributor_id": "D1"}
CLAIM_ASSESSED_V1 = {
    "claim_id": "CL-1",
    "scheme_id": "SC-1",
    "distributor_id": "D1",
    "claimed": "100.0000",
    "entitled": "80.0000",
    "approved": "80.0000",
    "over_claim": "20.0000",
    "reasons": ["claimed_more_than_entitled"],
    "lines": [],
    "revision": 3,
}
VARIANCE_V1 = {
    "count_id": "C1",
    "distributor_id": "D1",
    "sku_id": "S1",
    "counted_at": AT,
    "book": 10,
    "counted": 7,
    "variance_units": -3,
    "variance_value": -31.499999999999996,
    "revision": 1,
}


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("SkuRegistered", SKU_V1),
        ("StockCounted", COUNT_V1),
        ("StockPositionChanged", POSITION_V1),
        ("StockVarianceRecorded", VARIANCE_V1),
        ("RepRegistered", REP_V1),
        ("ClaimAssessed", CLAIM_ASSESSED_V1),
    ],
)
def test_the_version_1_samples_are_what_version_1_writers_wrote(event_type: str, payload: dict[str, Any]) -> None:
    jsonschema.validate(record(event_type, 1, payload), released(event_type, 1))


def test_a_version_1_sku_is_read_as_the_current_version_with_no_norms_of_its_own() -> None:
    event = decoded(record("SkuRegistered", 1, SKU_V1))
    assert isinstance(event, SkuRegistered)
    assert event.schema_version == 3  # through version 2 (norms) to 3 (currency, GST, case size)
    assert (event.payload.currency, event.payload.gst_rate, event.payload.units_per_case) == ("INR", None, None)
    assert (event.payload.max_cover_days, event.payload.min_cover_days, event.payload.overstock_min_units) == (
        None,
        None,
        None,
    )
    assert event.payload.list_price == Decimal("10.5")


def test_a_sku_labelled_version_1_that_already_carries_norms_keeps_them() -> None:
    # Written before the norms got a version of their own: the fields are there under schema_version 1.
    event = decoded(record("SkuRegistered", 1, {**SKU_V1, "max_cover_days": 30, "min_cover_days": 5}))
    assert (event.payload.max_cover_days, event.payload.min_cover_days) == (30, 5)


def test_a_version_1_rep_covers_every_beat_of_its_one_distributor() -> None:
    event = decoded(record("RepRegistered", 1, REP_V1))
    assert isinstance(event, RepRegistered)
    assert event.schema_version == 2
    assert (event.payload.distributor_id, event.payload.also_covers_distributor_ids, event.payload.beat_ids) == (
        "D1",
        [],
        [],
    )


def test_a_version_1_claim_assessment_is_of_the_claims_first_revision_without_history() -> None:
    event = decoded(record("ClaimAssessed", 1, CLAIM_ASSESSED_V1))
    assert isinstance(event, ClaimAssessed)
    assert (event.schema_version, event.payload.revision) == (3, 3)
    assert (event.payload.claim_revision, event.payload.submissions) == (1, [])
    assert event.payload.currency == "INR"  # version 3: the brand's, which every earlier assessment was in


def test_a_version_1_count_is_read_as_a_count() -> None:
    event = decoded(record("StockCounted", 1, COUNT_V1))
    assert isinstance(event, StockCounted)
    assert (event.schema_version, event.payload.purpose) == (2, "count")
    opening = decoded(record("StockCounted", 1, {**COUNT_V1, "purpose": "opening"}))
    assert opening.payload.purpose == "opening"


def test_a_version_1_position_value_becomes_the_exact_decimal_it_stood_for() -> None:
    event = decoded(record("StockPositionChanged", 1, POSITION_V1))
    assert isinstance(event, StockPositionChanged)
    assert event.schema_version == 3  # through version 2 (decimal value) to 3 (its currency)
    assert event.payload.currency == "INR"
    assert event.payload.value == Decimal("7600631.99")
    assert orjson.loads(encode_event(event))["payload"]["value"] == "7600631.9900"


def test_a_version_1_negative_variance_value_becomes_an_exact_decimal() -> None:
    event = decoded(record("StockVarianceRecorded", 1, VARIANCE_V1))
    assert isinstance(event, StockVarianceRecorded)
    assert event.payload.variance_value == Decimal("-31.5")


def test_a_version_2_position_carries_a_decimal_string_and_is_not_upcast_again() -> None:
    event = decoded(record("StockPositionChanged", 2, {**POSITION_V1, "value": "7600631.9900"}))
    assert event.payload.value == Decimal("7600631.99")
    with pytest.raises(ValidationError):  # a version 2 writer that sent a float broke its contract
        decoded(record("StockPositionChanged", 2, POSITION_V1))


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("SkuRegistered", SKU_V1),
        ("StockCounted", COUNT_V1),
        ("StockPositionChanged", POSITION_V1),
        ("StockVarianceRecorded", VARIANCE_V1),
        ("RepRegistered", REP_V1),
        ("ClaimAssessed", CLAIM_ASSESSED_V1),
    ],
)
def test_an_upcast_record_is_written_back_valid_against_the_current_released_schema(
    event_type: str, payload: dict[str, Any]
) -> None:
    event = decoded(record(event_type, 1, payload))
    version = current_version(EVENT_TYPES[event_type])
    jsonschema.validate(orjson.loads(encode_event(event)), released(event_type, version))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_a_schema_version_newer_than_the_reader_knows_is_refused_as_unknown(event_type: str) -> None:
    newer = current_version(EVENT_TYPES[event_type]) + 1
    document = record(event_type, newer, {})
    for read in (lambda: decoded(document), lambda: parse_event(document)):
        with pytest.raises(ValidationError) as raised:
            read()
        assert UNKNOWN_SCHEMA_VERSION in {e["type"] for e in raised.value.errors()}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_version_up_to_the_current_one_is_released_and_has_an_upcaster(event_type: str) -> None:
    event_class = EVENT_TYPES[event_type]
    version = current_version(event_class)
    for older in range(1, version + 1):
        assert (SCHEMAS_DIR / "released" / f"{event_type}.v{older}.json").exists()
    if version > 1:
        assert issubclass(event_class, Upcast)
        assert sorted(event_class.upcasters) == list(range(1, version))
