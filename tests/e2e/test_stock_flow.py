"""Invoice -> orders -> count -> variance and alerts, through order-capture, the broker, stock-ledger and
query-api as real processes; then a stock-ledger crash mid-stream that must leave every position exact."""

import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import MASTERS_TIME, SKUS, event, order, reference_events
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    norms = {
        "SELLTHROUGH_MAX_COVER_DAYS": "45",
        "SELLTHROUGH_MIN_COVER_DAYS": "7",
        "SELLTHROUGH_DEMAND_WINDOW_DAYS": "28",
    }
    with running_with_reference_data(infra, tokens, ["order-capture", "stock-ledger", "query-api"], norms) as running:
        yield running


def post(services: dict[str, ServiceProcess], tokens: Tokens, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events",
        json={"events": events},
        headers=tokens.header("admin"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()


async def query(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def invoice(distributor: str, lines: list[tuple[str, int]], at: datetime) -> dict[str, Any]:
    return event(
        "PrimaryInvoiced",
        {
            "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
            "distributor_id": distributor,
            "invoice_date": at.date().isoformat(),
            "lines": [{"sku_id": s, "quantity": q, "unit_price": "8.00"} for s, q in lines],
        },
        actor="erp-1",
        occurred_at=at,
    )


def count(distributor: str, lines: list[tuple[str, int]], at: datetime) -> dict[str, Any]:
    return event(
        "StockCounted",
        {
            "count_id": f"CNT-{uuid.uuid4().hex[:8]}",
            "distributor_id": distributor,
            "counted_at": at.isoformat(),
            "lines": [{"sku_id": s, "quantity": q} for s, q in lines],
        },
        actor="auditor",
        occurred_at=at,
    )


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


async def test_invoice_orders_and_count_give_positions_variance_and_alerts(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    post(services, tokens, [invoice("D1", [("S1", 1000), ("S2", 10)], NOW - timedelta(days=3))])
    post(services, tokens, [order("O1", [("S1", 5), ("S2", 9)], occurred_at=NOW - timedelta(days=1))])
    post(services, tokens, [count("D1", [("S1", 990)], NOW - timedelta(hours=1))])

    stock = await eventually(
        lambda: query(services, tokens, "/v1/stock", level="sku", parent_id="D1"),
        lambda body: {r["id"]: r["on_hand"] for r in body["rows"]} == {"S1": 990, "S2": 1},
        what="D1 positions: 1000 - 5 counted as 990, and 10 - 9",
    )
    s1 = by_id(stock["rows"])["S1"]
    assert s1["variance_units"] == -5, "counted 990 against a book of 995"
    assert s1["variance_value"] == str(-5 * Decimal(SKUS["S1"][1]).quantize(Decimal("0.0001")))  # "-52.5000"
    assert s1["value"] == "10395.0000"  # 990 x 10.50, a decimal string like every amount
    assert stock["freshness"]["newest_recorded_at"] is not None, "positions record when they were derived"
    assert stock["freshness"]["lag_events"] is not None
    region = await query(services, tokens, "/v1/stock", level="region", parent_id="Z1")
    assert by_id(region["rows"])["R1"]["on_hand"] == 991

    alerts = await eventually(
        lambda: query(services, tokens, "/v1/alerts", level="distributor", parent_id="R1"),
        lambda body: len(body["alerts"]) >= 2,
        what="alerts for D1",
    )
    kinds = {(a["sku_id"], a["kind"]) for a in alerts["alerts"]}
    assert kinds == {("S1", "overstock"), ("S2", "stockout_risk")}
    stockout = next(a for a in alerts["alerts"] if a["kind"] == "stockout_risk")
    assert stockout["days_of_cover"] == pytest.approx(1 / (9 / 28), abs=0.01)
    assert by_id(alerts["rows"])["D1"]["alerts"] == 2
    assert alerts["freshness"]["newest_recorded_at"] is not None

    sell_in = await query(
        services,
        tokens,
        "/v1/primary-vs-secondary",
        level="distributor",
        parent_id="R1",
        **{"from": str((NOW - timedelta(days=5)).date()), "to": str(NOW.date())},
    )
    d1 = by_id(sell_in["rows"])["D1"]
    assert (d1["primary_units"], d1["secondary_units"], d1["stock_build_units"]) == (1010, 14, 996)
    # The newest invoice applied is the one above (3 days ago); the freshness of sell-in says so.
    assert datetime.fromisoformat(sell_in["freshness"]["newest_occurred_at"]) == NOW - timedelta(days=3)


async def test_a_stock_ledger_crash_mid_stream_leaves_every_position_exact(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    expected: dict[tuple[str, str], int] = defaultdict(int)
    batches = []
    for n in range(12):
        at = NOW - timedelta(hours=20 - n)
        batch = [invoice("D2", [("S1", 40), ("S3", 25)], at), invoice("D3", [("S2", 30)], at)]
        batch += [order("O3", [("S1", 3), ("S3", 2)], occurred_at=at), order("O4", [("S2", 4)], occurred_at=at)]
        batches.append(batch)
        for d, s, q in (("D2", "S1", 37), ("D2", "S3", 23), ("D3", "S2", 26)):
            expected[(d, s)] += q

    for batch in batches[:4]:
        post(services, tokens, batch)
    services["stock-ledger"].kill()  # SIGKILL: whatever it was applying is rolled back, nothing half-done
    for batch in batches[4:8]:
        post(services, tokens, batch)
    services["stock-ledger"].start()
    for batch in batches[8:]:
        post(services, tokens, batch)

    async def positions() -> dict[tuple[str, str], int]:
        result = {}
        for distributor in ("D2", "D3"):
            body = await query(services, tokens, "/v1/stock", level="sku", parent_id=distributor)
            result.update({(distributor, r["id"]): r["on_hand"] for r in body["rows"]})
        return result

    await eventually(positions, lambda p: p == dict(expected), timeout=60, what="exact positions after the crash")


def run_import(services: dict[str, ServiceProcess], tokens: Tokens, export: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONNECTOR_TOKEN": tokens.issued["connector"].token, "COLUMNS": "200"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sellthrough_erp.cli",
            "import",
            str(export),
            "--url",
            services["order-capture"].url,
            "--actor",
            "erp-1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_erp_import_is_idempotent_by_invoice_number_and_reports_bad_rows(
    services: dict[str, ServiceProcess], tokens: Tokens, tmp_path: Path
) -> None:
    day = (NOW - timedelta(days=2)).date().isoformat()
    export = tmp_path / "invoices.csv"
    export.write_text(
        "invoice_number,invoice_date,distributor_id,sku_id,quantity,unit_price\n"
        f"ERP-1,{day},D3,S1,60,8.00\nERP-1,{day},D3,S3,40,6.00\n"
        f"ERP-2,{day},D3,S2,abc,4.00\n"
        f"ERP-3,{day},D-UNKNOWN,S2,5,4.00\n"
        f"ERP-4,{day},D3,S2,15,4.00\n"
    )

    first = run_import(services, tokens, export)
    again = run_import(services, tokens, export)

    assert first.returncode == 1, first.stdout + first.stderr  # some invoices were rejected
    assert "accepted: 2  duplicate: 0  rejected: 2" in first.stdout, first.stdout
    assert "quantity 'abc' is not a whole number" in first.stdout
    assert "unknown_distributor" in first.stdout
    assert "accepted: 0  duplicate: 2  rejected: 2" in again.stdout, again.stdout
    sell_in = await eventually(
        lambda: query(
            services, tokens, "/v1/primary-vs-secondary", level="sku", parent_id="D3", **{"from": day, "to": day}
        ),
        lambda body: {r["id"]: r["primary_units"] for r in body["rows"]} == {"S1": 60, "S3": 40, "S2": 15},
        what="imported invoices in the primary projection, once each",
    )
    assert len(sell_in["rows"]) == 3


@pytest.mark.parametrize(
    ("path", "params", "status", "problem"),
    [
        ("/v1/stock", {"level": "outlet"}, 422, "invalid-request"),  # stock is held by distributors
        ("/v1/stock", {"level": "zone", "parent_id": "Z1"}, 422, "invalid-parent"),
        ("/v1/stock", {"level": "sku", "parent_id": "D-NOPE"}, 404, "unknown-parent"),
        ("/v1/alerts", {"kind": "flood"}, 422, "invalid-request"),
        ("/v1/alerts", {"limit": "0"}, 422, "invalid-request"),
        ("/v1/primary-vs-secondary", {"from": "2026-02-01", "to": "2026-01-01"}, 422, "invalid-range"),
        ("/v1/primary-vs-secondary", {"from": "2024-01-01", "to": "2026-01-01"}, 422, "invalid-range"),
    ],
)
async def test_bad_stock_parameters_get_problem_json(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, params: dict[str, str], status: int, problem: str
) -> None:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)


async def test_empty_scopes_answer_with_zero_totals(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    body = await query(services, tokens, "/v1/stock", level="distributor", sku="S-NOT-SOLD-ANYWHERE")
    assert body["rows"] == []
    assert body["total"] == {"on_hand": 0, "value": "0", "rows": 0}


async def test_a_range_ending_at_the_start_of_the_calendar_is_refused_not_a_crash(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get("/v1/primary-vs-secondary", params={"to": "0001-01-01"})
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/invalid-range")


@pytest.mark.parametrize(
    ("path", "params", "header"),
    [
        ("/v1/sales", {"level": "distributor"}, "id,name,value,units,lines"),
        ("/v1/stock", {"level": "sku", "parent_id": "D1"}, "id,name,on_hand,value"),
        ("/v1/alerts", {}, "distributor_id,distributor_name,sku_id"),
        ("/v1/primary-vs-secondary", {"level": "distributor"}, "id,name,primary_value"),
    ],
)
async def test_tables_export_as_csv_with_the_same_rows_as_json(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, params: dict[str, str], header: str
) -> None:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        as_json = (await client.get(path, params=params)).json()
        as_csv = await client.get(path, params={**params, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith(header)
    rows = as_json["alerts"] if path == "/v1/alerts" else as_json["rows"]  # alerts exports the alerts themselves
    assert len(lines) - 1 == len(rows)
    assert rows, "the module's earlier tests left data to export"


EXPECTED_D9_ALERTS = {("S2", "overstock"), ("S3", "negative_stock")}


async def test_small_and_negative_stock_get_honest_alerts_and_every_value_is_an_exact_decimal(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    masters = [
        event("DistributorRegistered", {"distributor_id": "D9", "name": "Dist D9", "region_id": "R1"}),
        event("OutletRegistered", {
            "outlet_id": "O9", "name": "Shop O9", "distributor_id": "D9", "channel": "grocery", "outlet_class": "B",
            "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
        }),
        event("SkuRegistered", {
            "sku_id": "S8", "name": "Item S8", "brand": "B", "category": "c", "list_price": "0.10",
        }),
        event("SkuRegistered", {
            "sku_id": "S9", "name": "Item S9", "brand": "B", "category": "c", "list_price": "3.3333",
            "overstock_min_units": 500,
        }),
    ]  # fmt: skip
    masters = [{**m, "occurred_at": MASTERS_TIME.isoformat()} for m in masters]
    post(services, tokens, masters)
    wait_for_masters(services["order-capture"].url, tokens.issued["admin"].token, reference_events() + masters)
    post(services, tokens, [invoice("D9", [("S8", 7), ("S9", 400), ("S2", 13)], NOW - timedelta(days=2))])
    sold_without_stock = event("OrderCaptured", {
        "order_id": "ORD-D9-1", "outlet_id": "O9", "distributor_id": "D9", "rep_id": "REP-1", "visit_id": None,
        "gps": None, "lines": [{"sku_id": "S3", "quantity": 4, "unit_price": SKUS["S3"][1]}],
    }, occurred_at=NOW - timedelta(days=1))  # fmt: skip
    post(services, tokens, [sold_without_stock])

    stock = await eventually(
        lambda: query(services, tokens, "/v1/stock", level="sku", parent_id="D9"),
        lambda body: {r["id"]: r["on_hand"] for r in body["rows"]} == {"S8": 7, "S9": 400, "S2": 13, "S3": -4},
        what="D9's positions",
    )
    # Exact: 7 x 0.10, 400 x 3.3333, 13 x 4.00, -4 x 7.25; as floats the first alone is 0.7000000000000001.
    assert {r["id"]: r["value"] for r in stock["rows"]} == {
        "S8": "0.7000",
        "S9": "1333.3200",
        "S2": "52.0000",
        "S3": "-29.0000",
    }
    assert stock["total"]["value"] == "1357.0200"

    # No demand anywhere: 7 of S8 (at most the default 12) and 400 of S9 (at most its own 500) are no overstock;
    # 13 of S2 is. The 4 of S3 sold without stock are negative stock, and only that.
    alerts = await eventually(
        lambda: query(services, tokens, "/v1/alerts", level="sku", parent_id="D9"),
        lambda body: {(a["sku_id"], a["kind"]) for a in body["alerts"]} == EXPECTED_D9_ALERTS,
        what="D9's alerts",
    )
    negative = next(a for a in alerts["alerts"] if a["kind"] == "negative_stock")
    assert (negative["on_hand"], negative["days_of_cover"]) == (-4, None)
    assert alerts["alerts"][0] == negative, "negative stock is the most urgent"
