"""Formats (issue 19) without services: the contract rules for GST, HSN, case sizes and currency, the upcasts of
older SKUs and invoices to the brand's currency, and order-capture's edge readings (formats.py)."""

import hashlib
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from order_capture.domain.fingerprint import content_hash, earlier_version_hashes
from order_capture.domain.formats import check_gst, foreign_currencies, in_units
from order_capture.domain.validation import Reason, Rejection
from query_api.api.money import in_cases
from sellthrough_contracts import decode_event, parse_event
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_contracts.trade import OrderCaptured, PrimaryInvoiced

ENVELOPE = {"occurred_at": "2026-03-01T10:00:00+05:30", "source": "erp", "actor": "erp-1"}


def sku(**payload: Any) -> dict[str, Any]:
    base = {"sku_id": "S1", "name": "Tea", "brand": "B", "category": "c", "list_price": "10"}
    return {"event_id": str(uuid.uuid4()), "event_type": "SkuRegistered", **ENVELOPE, "payload": {**base, **payload}}


def invoice(lines: list[dict[str, Any]], **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "PrimaryInvoiced",
        **ENVELOPE,
        "payload": {
            "invoice_number": "I1",
            "distributor_id": "D1",
            "invoice_date": "2026-03-01",
            "lines": lines,
            **payload,
        },
    }


@pytest.mark.parametrize("rate", ["0", "0.25", "3", "5", "12", "18", "28", 18])
def test_gst_slabs_are_accepted(rate: object) -> None:
    event = parse_event(sku(gst_rate=rate, hsn_code="09023020", units_per_case=24))
    assert isinstance(event, SkuRegistered)
    assert event.payload.gst_rate == Decimal(str(rate))
    assert event.payload.units_per_case == 24


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gst_rate", "0.18"),
        ("gst_rate", "17"),
        ("hsn_code", "123"),
        ("hsn_code", "12345"),
        ("hsn_code", "0902A"),
        ("units_per_case", 0),
        ("currency", "inr"),
        ("currency", "RUPEE"),
    ],
)
def test_bad_formats_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        parse_event(sku(**{field: value}))


def test_older_skus_and_invoices_are_upcast_to_the_brands_currency() -> None:
    v2 = {**sku(max_cover_days=None, min_cover_days=None, overstock_min_units=None), "schema_version": 2}
    event = decode_event(orjson.dumps(v2))
    assert isinstance(event, SkuRegistered)
    assert event.schema_version == 3
    assert event.payload.currency == "INR"
    assert (event.payload.hsn_code, event.payload.gst_rate, event.payload.units_per_case) == (None, None, None)

    old = {**invoice([{"sku_id": "S1", "quantity": 2, "unit_price": "5"}]), "schema_version": 1}
    upcast = decode_event(orjson.dumps(old))
    assert isinstance(upcast, PrimaryInvoiced)
    assert upcast.schema_version == 2
    assert upcast.payload.currency == "INR"
    assert upcast.payload.lines[0].tax is None


def test_an_order_of_version_2_is_priced_in_the_brands_currency() -> None:
    line = {"sku_id": "S1", "quantity": 2, "unit_price": "5"}
    payload = {"order_id": "O1", "outlet_id": "OUT1", "distributor_id": "D1", "rep_id": "R1", "lines": [line]}
    v2 = {"event_id": str(uuid.uuid4()), "event_type": "OrderCaptured", "schema_version": 2, **ENVELOPE}
    event = decode_event(orjson.dumps({**v2, "payload": payload}))
    assert isinstance(event, OrderCaptured)
    assert (event.schema_version, event.payload.currency) == (3, "INR")


def test_invoice_lines_must_add_up() -> None:
    ok = parse_event(
        invoice([{"sku_id": "S1", "quantity": 10, "unit_price": "11.80", "taxable_value": "100", "tax": "18.00"}])
    )
    assert isinstance(ok, PrimaryInvoiced)
    with pytest.raises(ValidationError, match="not the line's value"):
        parse_event(
            invoice([{"sku_id": "S1", "quantity": 10, "unit_price": "11.80", "taxable_value": "100", "tax": "17.00"}])
        )
    with pytest.raises(ValidationError, match="both or neither"):
        parse_event(invoice([{"sku_id": "S1", "quantity": 10, "unit_price": "11.80", "taxable_value": "118"}]))


def test_gst_check_against_the_skus_rate() -> None:
    event = parse_event(
        invoice([{"sku_id": "S1", "quantity": 10, "unit_price": "11.80", "taxable_value": "105.36", "tax": "12.64"}])
    )
    assert check_gst(event, {}) is None  # rate not known: accepted
    assert check_gst(event, {"S1": Decimal("12")}) is None  # 105.36 x 12 % = 12.6432, within a paisa
    refused = check_gst(event, {"S1": Decimal("18")})
    assert refused is not None
    assert refused.reason is Reason.TAX_NOT_AT_GST_RATE


def test_foreign_currencies_are_named() -> None:
    raw = [invoice([], currency="USD"), invoice([]), "not an event", invoice([], currency="INR")]
    assert foreign_currencies(raw, "INR") == [{"index": 0, "currency": "USD"}]


def order(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"event_type": "OrderCaptured", "event_id": str(uuid.uuid4()), "payload": {"lines": lines}}


def test_cases_and_units_become_units() -> None:
    raw = order(
        [
            {"sku_id": "S1", "cases": 2, "units": 5, "unit_price": "1"},
            {"sku_id": "S2", "quantity": 3},
            {"sku_id": "S1", "cases": 1, "unit_price": "1"},
        ]
    )
    converted = in_units(raw, {"S1": 12})
    assert converted["payload"]["lines"] == [
        {"sku_id": "S1", "quantity": 29, "unit_price": "1"},
        {"sku_id": "S2", "quantity": 3},
        {"sku_id": "S1", "quantity": 12, "unit_price": "1"},
    ]
    plain = order([{"sku_id": "S1", "quantity": 3}])
    assert in_units(plain, {}) is plain  # nothing in cases: the document as posted


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"sku_id": "S9", "cases": 1}, Reason.NO_UNITS_PER_CASE),
        ({"sku_id": "S1", "cases": 1, "quantity": 12}, Reason.INVALID_FIELDS),
        ({"sku_id": "S1", "cases": "1"}, Reason.INVALID_FIELDS),
        ({"sku_id": "S1", "cases": True}, Reason.INVALID_FIELDS),
        ({"sku_id": "S1", "units": -1}, Reason.INVALID_FIELDS),
    ],
)
def test_cases_refused(line: dict[str, Any], reason: Reason) -> None:
    refused = in_units(order([line]), {"S1": 12})
    assert isinstance(refused, Rejection)
    assert refused.reason is reason


@pytest.mark.parametrize(
    ("quantity", "size", "split"),
    [(27, 12, (2, 3)), (24, 12, (2, 0)), (5, 12, (0, 5)), (-14, 12, (-1, -2)), (0, 6, (0, 0)), (7, None, (None, None))],
)
def test_quantities_split_into_cases(quantity: int, size: int | None, split: tuple[int | None, int | None]) -> None:
    assert in_cases(quantity, size) == split


def test_an_invoice_or_sku_accepted_before_the_upgrade_is_still_a_retry() -> None:
    # What the server fingerprinted for the version 1 invoice, as it is now read (upcast to version 2).
    line = {"sku_id": "S1", "quantity": 2, "unit_price": "5.50"}
    old = {**invoice([line]), "schema_version": 1}
    before = parse_event(old)
    v1 = {k: v for k, v in before.model_dump(mode="json").items() if k not in ("recorded_at", "key")}
    payload = {k: v for k, v in v1["payload"].items() if k != "currency"}
    payload["lines"] = [{"sku_id": "S1", "quantity": 2, "unit_price": "5.5"}]
    stored = hashlib.sha256(before.event_id.bytes + _fingerprint_of({**v1, "schema_version": 1, "payload": payload}))
    assert stored.digest() in earlier_version_hashes(before)
    assert content_hash(before) not in earlier_version_hashes(before)
    # A split of the line's tax, or another currency, is nothing version 1 could have said: no earlier form.
    taxed = parse_event(invoice([{**line, "quantity": 1, "unit_price": "11.8", "taxable_value": "10", "tax": "1.8"}]))
    assert earlier_version_hashes(taxed) == set()
    assert len(earlier_version_hashes(parse_event(sku()))) == 2
    assert earlier_version_hashes(parse_event(sku(units_per_case=6))) == set()


def _fingerprint_of(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "event_id"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()
