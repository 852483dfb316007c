"""Issue 19's exports, channels and stock turn through real order-capture, broker and query-api processes.

The brand (tests/support/brand.py) with its outlets in channels and classes: O1 grocery A, O2 chemist B,
O3 chemist A, O4 modern trade B, O5 grocery C. Period 2026-10-01..10 (10 days). Orders (value, units):
A at O1 134.00/14 (S1 x10, S3 x4), B at O2 20.00/5 (S2 x5), C at O3 47.50/7, D at O4 58.00/8; nothing at O5.
By channel: grocery 134.00, chemist 67.50, modern trade 58.00 = 259.50. By class: A 181.50, B 78.00.
Stock of D1 x S1: counted 100 on 2026-09-30, invoiced 100 on 2026-10-04, 10 out with order A on 2026-10-02.
"""

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import openpyxl
import pyarrow.parquet as pq
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import invoice, order, reference_events, stock_count
from tests.support.browser import CHROMIUM
from tests.support.inr import inr
from tests.support.services import running_services
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

PERIOD = {"from": "2026-10-01", "to": "2026-10-10"}
SEGMENTS = {"O1": ("grocery", "A"), "O2": ("chemist", "B"), "O3": ("chemist", "A"), "O4": ("modern trade", "B")}
SEGMENTS["O5"] = ("grocery", "C")
BATCH = 3
"""query-api's export batch (SELLTHROUGH_EXPORT_BATCH_ROWS): small, so a few events make several row groups."""


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").astimezone(UTC)


ORDERS = [
    order("O1", [("S1", 10), ("S3", 4)], occurred_at=at("2026-10-02")),
    order("O2", [("S2", 5)], occurred_at=at("2026-10-05")),
    order("O3", [("S1", 2), ("S2", 3), ("S3", 2)], occurred_at=at("2026-10-03")),
    order("O4", [("S3", 8)], occurred_at=at("2026-10-09")),
]
STOCK = [
    stock_count("2026-09-30T12:00:00+00:00", occurred_at=at("2026-09-30", 12), quantity=100),
    invoice("2026-10-04", occurred_at=at("2026-10-04"), quantity=100),
]


def segmented_reference() -> list[dict[str, Any]]:
    events = reference_events()
    for e in events:
        if e["event_type"] == "OutletRegistered":
            channel, outlet_class = SEGMENTS[e["payload"]["outlet_id"]]
            e["payload"] = {**e["payload"], "channel": channel, "outlet_class": outlet_class}
    return events


def post(services: dict[str, ServiceProcess], tokens: Tokens, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events",
        json={"events": events},
        headers=tokens.header("admin"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    env = {f"SELLTHROUGH_OCCURRED_AT_MAX_AGE_DAYS_{role}": "36500" for role in ("REP", "CONNECTOR", "ADMIN")}
    env["SELLTHROUGH_EXPORT_BATCH_ROWS"] = str(BATCH)
    with running_services(infra, tokens, ["order-capture", "query-api"], env) as running:
        post(running, tokens, segmented_reference())
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, segmented_reference())
        post(running, tokens, ORDERS + STOCK)
        yield running


async def get(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params={**PERIOD, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
async def arrived(services: dict[str, ServiceProcess], tokens: Tokens) -> dict[str, Any]:
    """Once every order, the stock events and the outlets' channels have been projected."""

    async def probe() -> dict[str, Any]:
        by = (await get(services, tokens, "/v1/sales/by", dimension="channel")).json()
        turn = (await get(services, tokens, "/v1/stock/turn", distributor_id="D1", sku="S1")).json()
        return {"by": by, "turn": turn}

    return await eventually(
        probe,
        lambda body: (
            Decimal(body["by"]["total_value"]) == Decimal("259.50")
            and None not in {r["id"] for r in body["by"]["rows"]}
            and [r["closing"] for r in body["turn"]["rows"]] == [190]
        ),
        timeout=60,
        what="orders, stock and outlets projected",
    )


def by_id(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    return {r["id"]: Decimal(r["value"]) for r in rows}


async def test_channel_and_class_are_dimensions_that_add_up(arrived: dict[str, Any]) -> None:
    assert by_id(arrived["by"]["rows"]) == {
        "grocery": Decimal("134.00"),
        "chemist": Decimal("67.50"),
        "modern trade": Decimal("58.00"),
    }
    assert sum(by_id(arrived["by"]["rows"]).values()) == Decimal(arrived["by"]["total_value"])


async def test_channel_filters_add_up_to_the_unfiltered_total(
    services: dict[str, ServiceProcess], tokens: Tokens, arrived: dict[str, Any]
) -> None:
    async def sales(**params: Any) -> dict[str, Any]:
        return dict((await get(services, tokens, "/v1/sales", level="zone", **params)).json())

    everything = await sales()
    channels = ("grocery", "chemist", "modern trade")
    parts = [await sales(channel=c) for c in channels]
    assert (
        sum(Decimal(p["total"]["value"]) for p in parts) == Decimal(everything["total"]["value"]) == Decimal("259.50")
    )
    assert sum(p["total"]["units"] for p in parts) == everything["total"]["units"]
    # Per zone too: Z1 (O1, O2, O3) has grocery 134.00 and chemist 67.50; Z2 (O4, O5) modern trade 58.00.
    assert by_id(parts[1]["rows"]) == {"Z1": Decimal("67.50")}
    assert parts[1]["channels"] == ["chemist"]
    both = await sales(channel=["chemist", "modern trade"], outlet_class="B")  # O2 and O4
    assert Decimal(both["total"]["value"]) == Decimal("78.00")

    kpis = [(await get(services, tokens, "/v1/kpis", outlet_class=c)).json() for c in ("A", "B", "C")]
    assert [Decimal(k["total"]["value"]) for k in kpis] == [Decimal("181.50"), Decimal("78.00"), Decimal(0)]
    assert kpis[2]["total"]["dormant_outlets"] == 1  # O5, class C, ordered nothing
    assert all(k["total"]["primary_value"] is None for k in kpis)  # primary sales belong to no outlet

    by_class = (await get(services, tokens, "/v1/sales/by", dimension="outlet_class", channel="chemist")).json()
    assert by_id(by_class["rows"]) == {"A": Decimal("47.50"), "B": Decimal("20.00")}
    ranking = (await get(services, tokens, "/v1/outlets/ranking", channel="grocery", n=10)).json()
    assert [r["id"] for r in ranking["rows"]] == ["O1", "O5"]


async def test_exports_read_back_equal_to_the_json(
    services: dict[str, ServiceProcess], tokens: Tokens, arrived: dict[str, Any]
) -> None:
    for path, params in (
        ("/v1/kpis", {"level": "region"}),
        ("/v1/sales/by", {"dimension": "channel"}),
        ("/v1/sales", {"level": "outlet"}),
        ("/v1/stock/turn", {}),
    ):
        rows = (await get(services, tokens, path, **params)).json()["rows"]
        parquet = await get(services, tokens, path, format="parquet", **params)
        assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
        assert parquet.headers["content-disposition"].endswith('.parquet"')
        table = pq.read_table(io.BytesIO(parquet.content)).to_pylist()
        assert len(table) == len(rows) > 0, path
        for got, row in zip(table, rows, strict=True):
            for name, value in row.items():
                expected = Decimal(value) if isinstance(got[name], Decimal) else value
                assert got[name] == expected, (path, name)

        xlsx = await get(services, tokens, path, format="xlsx", **params)
        assert xlsx.headers["content-disposition"].endswith('.xlsx"')
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        header, *cells = list(sheet.iter_rows(values_only=True))
        for got_row, row in zip(cells, rows, strict=True):
            got = dict(zip(header, got_row, strict=True))
            for name, value in row.items():
                if isinstance(got[name], int | float) and not isinstance(got[name], bool):
                    assert Decimal(str(got[name])) == Decimal(str(value)), (path, name)  # numbers stay numbers
                else:
                    assert got[name] == value, (path, name)
        assert len(cells) == len(rows)


async def test_large_exports_are_streamed_from_a_cursor(
    services: dict[str, ServiceProcess], tokens: Tokens, arrived: dict[str, Any]
) -> None:
    events = (await get(services, tokens, "/v1/sales/events", limit=1000)).json()
    async with (
        httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client,
        client.stream("GET", "/v1/sales/events", params={**PERIOD, "format": "parquet"}) as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers  # sent as it is encoded, not as one body
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    file = pq.ParquetFile(io.BytesIO(body))
    # Four orders (one event each) in batches of BATCH: one row group per batch read from the cursor.
    assert file.metadata.num_row_groups == -(-len(events["rows"]) // BATCH) == 2
    table = file.read().to_pylist()
    assert [str(r["event_id"]) for r in table] == [r["event_id"] for r in events["rows"]]
    assert sum(r["value"] for r in table) == Decimal(events["total"]["value"]) == Decimal("259.50")

    outlets = (await get(services, tokens, "/v1/outlets/map", limit=1)).json()
    assert len(outlets["outlets"]) == 1
    exported = await get(services, tokens, "/v1/outlets/map", limit=1, format="parquet")
    file = pq.ParquetFile(io.BytesIO(exported.content))
    assert file.metadata.num_rows == outlets["total_outlets"] == 5  # a file has every outlet, whatever `limit`
    assert file.metadata.num_row_groups == 2


async def test_stock_turn_by_hand(arrived: dict[str, Any]) -> None:
    # D1 x S1: opening 100 (the count), + 100 invoiced - 10 out = closing 190; average (100 + 190) / 2 = 145;
    # turn 10 / 145 = 0.069; days of inventory 10 days x 145 / 10 = 145.
    (row,) = arrived["turn"]["rows"]
    assert (row["opening"], row["closing"], row["units_out"], row["average_stock"]) == (100, 190, 10, 145.0)
    assert (row["stock_turn"], row["days_of_inventory"]) == (0.069, 145.0)
    assert arrived["turn"]["days"] == 10


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_the_dashboard_filters_by_channel_and_class(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: "Browser"
) -> None:
    from playwright.sync_api import expect

    api = Api(services, tokens)
    api.wait(lambda: Decimal(api.get("/v1/sales", **PERIOD)["total"]["value"]) == Decimal("259.50"), "orders")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{services['query-api'].url}/dashboard")
    page.get_by_test_id("token-input").fill(tokens.issued["analyst"].token)
    page.get_by_test_id("token-submit").click()
    page.get_by_test_id("filter-from").fill(PERIOD["from"])
    page.get_by_test_id("filter-to").fill(PERIOD["to"])
    page.get_by_test_id("filter-channel").fill("chemist")
    page.get_by_test_id("filter-outlet-class").fill("B")
    page.get_by_test_id("filter-apply").click()
    # O2 alone is a chemist of class B: 20.00, all of it in zone Z1.
    filtered = api.get("/v1/sales", level="zone", channel="chemist", outlet_class="B", **PERIOD)
    assert Decimal(filtered["total"]["value"]) == Decimal("20.00")
    expect(page.get_by_test_id("card-secondary-value")).to_have_attribute("data-full", inr("20.00"))
    expect(page.get_by_test_id("value-Z1")).to_have_text(inr("20.00"))
    expect(page.get_by_test_id("rows-table").locator("tbody tr")).to_have_count(1)
    # The inputs suggest the channels that sold (from /v1/sales/by?dimension=channel).
    options = page.locator("#channel-options option")
    expect(options).to_have_count(3, timeout=10_000)
    page.get_by_test_id("filter-channel").fill("")
    page.get_by_test_id("filter-outlet-class").fill("")
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("card-secondary-value")).to_have_attribute("data-full", inr("259.50"))
    page.close()
