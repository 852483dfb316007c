"""A distributor's billing feed (DMS CSV, Tally XML) as a second source of secondary sales, through the import
CLI, order-capture, the broker, stock-ledger and query-api as real processes: an invoice naming an order is that
order's delivery whichever arrives first, one without an order counts as sales of its own, an invoice for an order
never captured counts nothing, and a re-imported file changes nothing; sales, their sources and provenance say
where each figure came from, and stock moves once per invoice. Tally XML for primary invoices as well."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import order
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tally"
NOW = datetime.now(UTC)
DAY = (NOW - timedelta(days=2)).date()
RANGE = {"from": str(DAY - timedelta(days=1)), "to": str(NOW.date())}


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_with_reference_data(infra, tokens, ["order-capture", "stock-ledger", "query-api"]) as running:
        yield running


def cli(
    services: dict[str, ServiceProcess], tokens: Tokens, *args: str, token: str = "connector"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONNECTOR_TOKEN": tokens.issued[token].token, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sellthrough_erp.cli", *args, "--url", services["order-capture"].url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def read(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params={**RANGE, **params}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def outlets(services: dict[str, ServiceProcess], tokens: Tokens, distributor: str) -> dict[str, Any]:
    body = await read(services, tokens, "/v1/sales", level="outlet", parent_id=distributor)
    return {row["id"]: row for row in body["rows"]}


async def on_hand(services: dict[str, ServiceProcess], tokens: Tokens, distributor: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get("/v1/stock", params={"level": "sku", "parent_id": distributor}, timeout=10)
    assert response.status_code == 200, response.text
    return {row["id"]: row["on_hand"] for row in response.json()["rows"]}


def tally_export(tmp_path: Path, name: str, order_id: str, tag: str) -> Path:
    """The fixture export, made this run's own: recent dates, unique voucher numbers, this run's order."""
    text = (FIXTURES / name).read_text()
    for fixed in ("20261130", "20261201", "20261202"):
        text = text.replace(f"<DATE>{fixed}</DATE>", f"<DATE>{DAY:%Y%m%d}</DATE>")
    text = text.replace("ORD-TALLY-1", order_id).replace("/26-27/", f"/{tag}/")
    path = tmp_path / name
    path.write_text(text)
    return path


async def test_a_tally_export_delivers_its_order_adds_sales_without_one_and_imports_once(
    services: dict[str, ServiceProcess], tokens: Tokens, tmp_path: Path
) -> None:
    captured = order("O1", [("S1", 10), ("S3", 4)], occurred_at=NOW - timedelta(days=2))
    Api(services, tokens).post([captured])
    order_id = captured["payload"]["order_id"]
    tag = uuid.uuid4().hex[:6]
    export = tally_export(tmp_path, "distributor-sales.xml", order_id, tag)
    args = ("retailer-invoices", str(export), "--distributor", "D1", "--names", str(FIXTURES / "names.csv"))

    first = cli(services, tokens, *args, "--actor", "erp-1", "--source", "tally")
    again = cli(services, tokens, *args, "--actor", "erp-1", "--source", "tally")

    assert first.returncode == 0, first.stdout + first.stderr
    assert "accepted: 2  duplicate: 0  rejected: 0" in first.stdout, first.stdout
    assert "skipped 2 vouchers" in first.stdout  # the receipt and the cancelled invoice
    assert "accepted: 0  duplicate: 2  rejected: 0" in again.stdout, again.stdout

    rows = await eventually(
        lambda: outlets(services, tokens, "D1"),
        lambda r: "O2" in r and r.get("O1", {}).get("delivered_units") == 14,
        what="the invoice delivering the order, and the one without an order, applied",
    )
    # O1: the rep's order once, its invoice as the delivery (14 of 14 units), not as more sales.
    assert (Decimal(rows["O1"]["value"]), rows["O1"]["units"]) == (Decimal("134.00"), 14)
    # O2: the invoice without an order is sales of its own, tax included, delivered as billed.
    o2 = rows["O2"]
    assert (Decimal(o2["value"]), o2["units"], o2["delivered_units"]) == (Decimal("26.88"), 6, 6)

    sources = await read(services, tokens, "/v1/sales/sources", distributor="D1")
    by_origin = {(r["origin"], r["source"]): (Decimal(r["value"]), r["units"]) for r in sources["rows"]}
    assert by_origin == {("order", ""): (Decimal("134.00"), 14), ("invoice", "tally"): (Decimal("26.88"), 6)}
    assert sources["invoices"] == {"matched": 1, "awaiting_order": 0, "without_order": 1}
    drill = await read(services, tokens, "/v1/sales", level="distributor", parent_id="R1")
    d1 = next(r for r in drill["rows"] if r["id"] == "D1")
    assert Decimal(sources["total"]["value"]) == Decimal(d1["value"])

    events = (await read(services, tokens, "/v1/sales/events", outlet="O2"))["rows"]
    assert [(e["event_type"], e["reference"], e["source"], Decimal(e["value"])) for e in events] == [
        ("RetailerInvoiced", f"SV/{tag}/0002", "tally", Decimal("26.88"))
    ]

    # Stock left D1 once per invoice: the order's own movement gave way to its invoice's.
    await eventually(
        lambda: on_hand(services, tokens, "D1"),
        lambda stock: stock == {"S1": -10, "S2": -6, "S3": -4},
        what="D1's stock moved once per invoice",
    )


async def test_an_invoice_before_its_order_counts_once_and_one_for_an_unknown_order_counts_nothing(
    services: dict[str, ServiceProcess], tokens: Tokens, tmp_path: Path
) -> None:
    late = order("O4", [("S2", 5), ("S3", 2)], occurred_at=NOW - timedelta(days=2))
    order_id, never = late["payload"]["order_id"], f"ORD-NEVER-{uuid.uuid4().hex[:6]}"
    export = tmp_path / "dms.csv"
    export.write_text(
        "invoice_number,invoice_date,distributor_id,outlet_id,order_id,sku_id,quantity,value,taxable_value,tax\n"
        f"B-{order_id},{DAY},D3,O4,{order_id},S2,5,22.40,20.00,2.40\n"
        f"B-{never},{DAY},D3,O5,{never},S1,3,37.17,31.50,5.67\n"
    )
    imported = cli(services, tokens, "retailer-invoices", str(export), "--actor", "erp-1")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "accepted: 2  duplicate: 0  rejected: 0" in imported.stdout, imported.stdout

    # The invoice waits for its order (it counts nothing yet), then the order arrives and takes it as its delivery.
    await eventually(
        lambda: read(services, tokens, "/v1/sales/sources", distributor="D3"),
        lambda body: body["invoices"] == {"matched": 0, "awaiting_order": 2, "without_order": 0},
        what="both invoices applied, awaiting their orders",
    )
    assert await outlets(services, tokens, "D3") == {}
    Api(services, tokens).post([late])

    rows = await eventually(
        lambda: outlets(services, tokens, "D3"),
        lambda r: r.get("O4", {}).get("delivered_units") == 5,
        what="the late order with its invoice as the delivery",
    )
    assert (Decimal(rows["O4"]["value"]), rows["O4"]["units"], rows["O4"]["ordered_units"]) == (
        Decimal("34.50"),
        7,
        7,
    )
    assert "O5" not in rows  # an invoice for an order never captured adds no sales
    sources = await read(services, tokens, "/v1/sales/sources", distributor="D3")
    assert sources["invoices"] == {"matched": 1, "awaiting_order": 1, "without_order": 0}
    # Stock: the delivered 5 of S2 once (the order's own -5 gave way), the undelivered S3 back, the unknown
    # order's goods left all the same.
    await eventually(
        lambda: on_hand(services, tokens, "D3"),
        lambda stock: stock.get("S2") == -5 and stock.get("S1") == -3 and stock.get("S3", 0) == 0,
        what="D3's stock moved once per invoice",
    )


async def test_who_may_post_a_distributors_invoices(
    services: dict[str, ServiceProcess], tokens: Tokens, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    export = tmp_path / "own.csv"
    export.write_text(
        "invoice_number,invoice_date,distributor_id,outlet_id,sku_id,quantity,unit_price\n"
        f"OWN-{tag},{DAY},D1,O2,S1,1,10.50\n"
    )
    own = cli(services, tokens, "retailer-invoices", str(export), "--actor", "D1", token="distributor1")
    assert "accepted: 1  duplicate: 0  rejected: 0" in own.stdout, own.stdout + own.stderr

    foreign = tmp_path / "foreign.csv"
    foreign.write_text(export.read_text().replace(",D1,O2,", ",D2,O3,").replace("OWN-", "FOREIGN-"))
    rejects = tmp_path / "rejects.csv"
    other = cli(
        services,
        tokens,
        "retailer-invoices",
        str(foreign),
        "--actor",
        "erp-d1",
        "--rejects",
        str(rejects),
        token="connector_d1",
    )
    assert other.returncode == 1, other.stdout
    assert "distributor_not_bound" in rejects.read_text()


async def test_a_brands_tally_export_imports_primary_invoices_with_a_reject_report(
    services: dict[str, ServiceProcess], tokens: Tokens, tmp_path: Path
) -> None:
    export = tally_export(tmp_path, "brand-sales.xml", "", uuid.uuid4().hex[:6])
    rejects = tmp_path / "rejects.csv"
    args = ("import", str(export), "--names", str(FIXTURES / "names.csv"), "--actor", "erp-1")
    first = cli(services, tokens, *args, "--rejects", str(rejects))
    again = cli(services, tokens, *args)

    assert first.returncode == 1, first.stdout + first.stderr
    assert "accepted: 1  duplicate: 0  rejected: 1" in first.stdout, first.stdout
    assert "sign of a return" in rejects.read_text()
    assert "accepted: 0  duplicate: 1  rejected: 1" in again.stdout, again.stdout
    await eventually(
        lambda: read(services, tokens, "/v1/primary-vs-secondary", level="sku", parent_id="D1"),
        lambda body: {r["id"]: r["primary_units"] for r in body["rows"]}.get("S1") == 150,
        what="the Tally primary invoice applied once",
    )
