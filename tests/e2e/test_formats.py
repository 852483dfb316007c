"""Indian business formats through the real services (order-capture, the broker, stock-ledger, query-api): orders
entered in cases + units land as units and read back split; money rows carry their currency; a write in another
currency is refused whole; invoice lines' GST is checked against the SKU's rate."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import MASTERS_TIME, event, reference_events
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

CASED = "SF-CASE"
"""Packed 12 to a case, GST 18 %."""
LOOSE = "SF-LOOSE"
"""No case size, no GST rate known."""


def formats_skus() -> list[dict[str, Any]]:
    common = {"brand": "Formats", "category": "tea", "list_price": "10.00"}
    return [
        event(
            "SkuRegistered",
            {
                "sku_id": CASED,
                "name": "Tea 250 g",
                **common,
                "hsn_code": "0902",
                "gst_rate": "18",
                "units_per_case": 12,
            },
            occurred_at=MASTERS_TIME,
        ),
        event("SkuRegistered", {"sku_id": LOOSE, "name": "Tea loose", **common}, occurred_at=MASTERS_TIME),
    ]


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_with_reference_data(infra, tokens, ["order-capture", "stock-ledger", "query-api"]) as running:
        url = running["order-capture"].url
        response = httpx.post(
            f"{url}/v1/events", json={"events": formats_skus()}, headers=tokens.header("admin"), timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.text
        wait_for_masters(url, tokens.issued["admin"].token, reference_events() + formats_skus())
        yield running


def post(services: dict[str, ServiceProcess], tokens: Tokens, events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{services['order-capture'].url}/v1/events",
        json={"events": events},
        headers=tokens.header("admin"),
        timeout=30,
    )


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


async def query(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def cased_order(outlet: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return event(
        "OrderCaptured",
        {
            "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
            "outlet_id": outlet,
            "distributor_id": "D1",
            "rep_id": "REP-1",
            "lines": lines,
        },
        actor="REP-1",
    )


def invoice_of(lines: list[dict[str, Any]], **payload: Any) -> dict[str, Any]:
    return event(
        "PrimaryInvoiced",
        {
            "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
            "distributor_id": "D1",
            "invoice_date": (datetime.now(UTC) - timedelta(minutes=10)).date().isoformat(),
            "lines": lines,
            **payload,
        },
        actor="erp-1",
    )


async def test_an_order_in_cases_and_units_lands_as_units_and_reads_back_split(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    order = cased_order("O2", [{"sku_id": CASED, "cases": 2, "units": 3, "unit_price": "10.00"}])
    [result] = results(post(services, tokens, [order]))
    assert result["status"] == "accepted", result

    activity = await eventually(
        lambda: query(services, tokens, "/v1/outlets/O2/activity"),
        # The SKU's case size comes from the reference topic, which query-api may read after the trade topic.
        lambda a: any(
            o["order_id"] == order["payload"]["order_id"] and o["lines"][0]["units_per_case"] for o in a["orders"]
        ),
        what="the order in the outlet's activity, with its SKU's case size",
    )
    [line] = next(o for o in activity["orders"] if o["order_id"] == order["payload"]["order_id"])["lines"]
    assert line["ordered_units"] == 27  # 2 cases of 12 + 3
    assert (line["units_per_case"], line["ordered_cases"], line["ordered_loose_units"]) == (12, 2, 3)
    assert Decimal(line["ordered_value"]) == Decimal("270")
    assert activity["currency"] == "INR"

    sales = await eventually(
        lambda: query(services, tokens, "/v1/sales", level="national", sku_id=CASED),
        lambda s: s["total"]["units"] >= 27,
        what="the order in the sales rollups",
    )
    assert sales["total"]["units"] == 27
    assert Decimal(sales["total"]["value"]) == Decimal("270")
    assert sales["currency"] == "INR"

    stock = await eventually(
        lambda: query(services, tokens, "/v1/stock", level="sku", parent_id="D1", sku_id=CASED),
        lambda s: bool(s["rows"]) and s["rows"][0]["on_hand"] == -27,
        what="the position in the stock read",
    )
    [row] = stock["rows"]
    assert row["on_hand"] == -27
    assert row["units_per_case"] == 12
    assert (row["on_hand_cases"], row["on_hand_loose_units"]) == (-2, -3)
    assert stock["currency"] == "INR"

    alerts = await eventually(
        lambda: query(services, tokens, "/v1/alerts", level="sku", parent_id="D1", sku_id=CASED),
        lambda a: any(x["kind"] == "negative_stock" for x in a["alerts"]),
        what="the negative stock alert",
    )
    [alert] = alerts["alerts"]
    assert (alert["on_hand"], alert["on_hand_cases"], alert["on_hand_loose_units"]) == (-27, -2, -3)


async def test_cases_of_a_sku_without_a_case_size_are_refused(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    order = cased_order("O1", [{"sku_id": LOOSE, "cases": 1, "unit_price": "10.00"}])
    [result] = results(post(services, tokens, [order]))
    assert (result["status"], result["reason"]) == ("rejected", "no_units_per_case"), result

    both = cased_order("O1", [{"sku_id": CASED, "cases": 1, "quantity": 12, "unit_price": "10.00"}])
    [result] = results(post(services, tokens, [both]))
    assert (result["status"], result["reason"]) == ("rejected", "invalid_fields"), result


async def test_a_write_in_another_currency_is_refused_whole(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    good = invoice_of([{"sku_id": LOOSE, "quantity": 1, "unit_price": "10.00"}])
    dollars = invoice_of([{"sku_id": LOOSE, "quantity": 1, "unit_price": "10.00"}], currency="USD")
    response = post(services, tokens, [good, dollars])
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/foreign-currency")
    assert problem["currency"] == "INR"
    assert problem["events"] == [{"index": 1, "currency": "USD"}]
    # Nothing of the batch was accepted: the good invoice is new when posted again alone.
    [result] = results(post(services, tokens, [good]))
    assert result["status"] == "accepted", result
    # The brand's own currency, said explicitly, is accepted.
    [result] = results(post(services, tokens, [invoice_of([good["payload"]["lines"][0]], currency="INR")]))
    assert result["status"] == "accepted", result


async def test_invoice_lines_gst_is_checked_against_the_skus_rate(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    # 10 x 11.80 = 118.00 = 100.00 taxable + 18.00 GST at 18 %.
    right = invoice_of(
        [{"sku_id": CASED, "quantity": 10, "unit_price": "11.80", "taxable_value": "100.00", "tax": "18"}]
    )
    wrong_rate = invoice_of(
        [{"sku_id": CASED, "quantity": 10, "unit_price": "11.80", "taxable_value": "105.36", "tax": "12.64"}]
    )
    not_adding_up = invoice_of(
        [{"sku_id": CASED, "quantity": 10, "unit_price": "11.80", "taxable_value": "100.00", "tax": "20.00"}]
    )
    rate_unknown = invoice_of(
        [{"sku_id": LOOSE, "quantity": 10, "unit_price": "11.80", "taxable_value": "105.36", "tax": "12.64"}]
    )
    outcome = results(post(services, tokens, [right, wrong_rate, not_adding_up, rate_unknown]))
    assert [(r["status"], r.get("reason")) for r in outcome] == [
        ("accepted", None),
        ("rejected", "tax_not_at_gst_rate"),
        ("rejected", "invalid_fields"),
        ("accepted", None),
    ], outcome
