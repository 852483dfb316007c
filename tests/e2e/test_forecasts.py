"""Forecasts, days of cover, suggested orders and anomalies from four weeks of back-dated orders, through
order-capture, the broker, stock-ledger and query-api as real processes. Expected figures are worked out by
hand in the comments (the rules: docs/forecasting.md)."""

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import event, order, reference_events
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
SURGE_DAYS_AGO = 10


def days_ago(n: int) -> datetime:
    return NOW - timedelta(days=n)


def post(services: dict[str, ServiceProcess], tokens: Tokens, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events",
        json={"events": events},
        headers=tokens.header("admin"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()


def invoice(distributor: str, lines: list[tuple[str, int]], at: datetime) -> dict[str, Any]:
    payload = {
        "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
        "distributor_id": distributor,
        "invoice_date": at.date().isoformat(),
        "lines": [{"sku_id": s, "quantity": q, "unit_price": "8.00"} for s, q in lines],
    }
    return event("PrimaryInvoiced", payload, actor="erp-1", occurred_at=at)


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "stock-ledger", "query-api"]) as running:
        post(running, tokens, reference_events())
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, reference_events())
        # D1 receives S1 400, S2 50 (never sold) and S3 100, a month ago.
        post(running, tokens, [invoice("D1", [("S1", 400), ("S2", 50), ("S3", 100)], days_ago(30))])
        # S1 at outlet O1: 10 units a day for the last 28 days (yesterday included), 70 on one day: regular demand
        # with a planted surge. S3 at O2: 6 units every 4th day: intermittent (ADI 28 / 7 = 4).
        orders = [
            order("O1", [("S1", 70 if d == SURGE_DAYS_AGO else 10)], occurred_at=days_ago(d)) for d in range(28, 0, -1)
        ]
        orders += [order("O2", [("S3", 6)], occurred_at=days_ago(d)) for d in range(28, 0, -4)]
        post(running, tokens, orders)
        yield running


async def get(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, token: str = "analyst", **params: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header(token)) as client:
        return await client.get(path, params=params, timeout=10)


async def query(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> dict[str, Any]:
    response = await get(services, tokens, path, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def settled(body: dict[str, Any]) -> bool:
    rows = {r["sku_id"]: r for r in body["rows"]}
    return (
        {s: r["on_hand"] for s, r in rows.items()} == {"S1": 60, "S2": 50, "S3": 58}
        and rows["S1"]["history_days"] == 28
        and rows["S3"]["adi"] == 4
    )


async def test_forecast_cover_and_suggested_order(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    body = await eventually(
        lambda: query(services, tokens, "/v1/forecasts", distributor_id="D1"),
        settled,
        timeout=30,
        what="D1's sales and stock positions (S1: 400 - 27 x 10 - 70; S3: 100 - 7 x 6)",
    )
    assert body["distributor_name"] == "Dist D1"
    assert body["history_to"] == days_ago(1).date().isoformat()
    assert body["policy"] == {"lead_time_days": 7, "review_days": 7, "safety_days": 0, "safety_z": 1.65}
    rows = {r["sku_id"]: r for r in body["rows"]}

    # S1: SES (alpha 0.2) on 10s. The surge (70 against a band of 3 x the 1-unit MAD floor) enters as 13: level
    # 10.6, then nine days of 10 bring it to 10 + 0.6 x 0.8^9. One-step errors: 17 zeros, 3, then 0.6 x 0.8^j for
    # j = 0..8 (sum 3 x (1 - 0.8^9)), over 27 days.
    s1 = rows["S1"]
    level = 10 + 0.6 * 0.8**9
    mad = (3 + 3 * (1 - 0.8**9)) / 27
    assert s1["method"] == "ses"
    assert s1["daily_forecast"] == pytest.approx(level, abs=1e-4)
    assert s1["mad"] == pytest.approx(mad, abs=1e-4)
    assert s1["days_of_cover"] == pytest.approx(60 / level, abs=0.01)
    safety = 1.65 * 1.25 * mad * math.sqrt(14)
    assert s1["safety_stock"] == pytest.approx(safety, abs=1e-3)
    assert s1["suggested_order"] == math.ceil(level * 14 + safety - 60) == 83
    assert len(s1["forecast"]) == 14
    assert s1["forecast"][0]["day"] == NOW.date().isoformat()
    assert s1["forecast"][0]["low"] == pytest.approx(level - 1.96 * 1.25 * mad, abs=1e-3)

    # S3: Croston-SBA, size 6 every 4 days: 6 / 4 x (1 - 0.1 / 2); plenty of stock, nothing to order.
    s3 = rows["S3"]
    assert s3["method"] == "croston_sba"
    assert s3["daily_forecast"] == pytest.approx(1.425)
    assert s3["days_of_cover"] == pytest.approx(58 / 1.425, abs=0.01)
    assert s3["suggested_order"] == 0

    # S2: stock, no sales.
    s2 = rows["S2"]
    assert (s2["method"], s2["daily_forecast"], s2["days_of_cover"], s2["suggested_order"]) == ("no_demand", 0, None, 0)

    longer = await query(
        services, tokens, "/v1/forecasts", distributor_id="D1", sku="S1", lead_time_days="21", horizon_days="3"
    )
    (row,) = longer["rows"]
    assert len(row["forecast"]) == 3
    safety = 1.65 * 1.25 * mad * math.sqrt(28)
    assert row["suggested_order"] == math.ceil(level * 28 + safety - 60)  # 229


async def test_a_planted_surge_is_reported(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    await eventually(
        lambda: query(services, tokens, "/v1/forecasts", distributor_id="D1"), settled, timeout=30, what="D1 data"
    )
    surge_day = days_ago(SURGE_DAYS_AGO).date().isoformat()
    expected = {
        "node_id": "S1",
        "distributor_id": "D1",
        "distributor_name": "Dist D1",
        "sku_id": "S1",
        "sku_name": "Item S1",
        "day": surge_day,
        "kind": "surge",
        "units": 70,
        "expected": 10,
        "deviation": 60,
        "threshold": 3,
        "method": "ses",
    }
    by_sku = await query(services, tokens, "/v1/anomalies", level="sku", parent_id="D1")
    assert by_sku["rows"] == [expected]
    by_distributor = await query(services, tokens, "/v1/anomalies", level="distributor", parent_id="R1", k="10")
    assert by_distributor["rows"] == [expected | {"node_id": "D1", "threshold": 10}]  # 10 x the 1-unit floor
    national = await query(services, tokens, "/v1/anomalies")
    assert [r["day"] for r in national["rows"]] == [surge_day]

    after = days_ago(SURGE_DAYS_AGO - 1).date().isoformat()
    assert (await query(services, tokens, "/v1/anomalies", **{"from": after}))["rows"] == []
    # Reading 14 days before `from` gives the surge 14 days of history: judged with min_history 14, not with 15.
    window = {"from": surge_day, "to": surge_day, "history_days": "14"}
    judged = await query(services, tokens, "/v1/anomalies", min_history="14", **window)
    assert [r["day"] for r in judged["rows"]] == [surge_day]
    assert (await query(services, tokens, "/v1/anomalies", min_history="15", **window))["rows"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "problem"),
    [
        ("/v1/forecasts", {}, 422, "invalid-request"),  # distributor_id is required
        ("/v1/forecasts", {"distributor_id": "D-NOPE"}, 404, "unknown-distributor"),
        ("/v1/forecasts", {"distributor_id": "D1", "horizon_days": "0"}, 422, "invalid-request"),
        ("/v1/forecasts", {"distributor_id": "D1", "horizon_days": "91"}, 422, "invalid-request"),
        ("/v1/forecasts", {"distributor_id": "D1", "lead_time_days": "-1"}, 422, "invalid-request"),
        ("/v1/forecasts", {"distributor_id": "D1", "sku": "bad id!"}, 422, "invalid-request"),
        ("/v1/anomalies", {"level": "outlet"}, 422, "invalid-request"),
        ("/v1/anomalies", {"level": "zone", "parent_id": "Z1"}, 422, "invalid-parent"),
        ("/v1/anomalies", {"level": "sku", "parent_id": "D-NOPE"}, 404, "unknown-parent"),
        ("/v1/anomalies", {"from": "2026-02-01", "to": "2026-01-01"}, 422, "invalid-range"),
        ("/v1/anomalies", {"k": "0.5"}, 422, "invalid-request"),
        ("/v1/anomalies", {"min_history": "1"}, 422, "invalid-request"),
    ],
)
async def test_bad_parameters_get_problem_json(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, params: dict[str, str], status: int, problem: str
) -> None:
    response = await get(services, tokens, path, **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)


async def test_reps_cannot_read_forecasts(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    response = await get(services, tokens, "/v1/forecasts", token="rep1", distributor_id="D1")
    assert response.status_code == 403, response.text


async def test_openapi_documents_both_endpoints(services: dict[str, ServiceProcess]) -> None:
    async with httpx.AsyncClient(base_url=services["query-api"].url) as client:
        spec = (await client.get("/openapi.json")).json()
    for path, model in (("/v1/forecasts", "ForecastResponse"), ("/v1/anomalies", "AnomaliesResponse")):
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}
    assert "ses_weekly" in spec["components"]["schemas"]["Method"]["enum"]


async def test_a_distributor_without_sales_or_stock_has_no_rows(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    # Known once query-api has applied the reference data, which nothing above waited for (404 until then).
    body = await eventually(
        lambda: query(services, tokens, "/v1/forecasts", distributor_id="D3"), lambda _: True, what="D3 known"
    )
    assert (body["distributor_name"], body["rows"]) == ("Dist D3", [])
    assert (await query(services, tokens, "/v1/anomalies", level="sku", parent_id="D3"))["rows"] == []
