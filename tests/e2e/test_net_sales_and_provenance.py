"""Net secondary sales and their provenance through real service processes, Postgres and the broker: orders,
cancellations (one posted before its order), a cancellation after delivery (does not count), retailer and company
returns and a delivery posted twice under two event ids. /v1/sales shows the net figure and what makes it up, and
at every drill level and filter the events listed by /v1/sales/events sum to the cell, page by page."""

import asyncio
import csv
import io
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import DISTRIBUTORS, OUTLETS, REGIONS, REPS, SKUS, event, order
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
TODAY = NOW.date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY)}


def history(seed: int) -> tuple[list[list[dict[str, Any]]], dict[str, dict[str, Decimal | int]]]:
    """Batches to post, in order, and the expected figures per outlet (computed from the facts, not the service)."""
    rng = random.Random(seed)
    orders = [
        order(
            rng.choice(list(OUTLETS)),
            [(sku, rng.randint(1, 9)) for sku in rng.sample(list(SKUS), rng.randint(1, 3))],
            occurred_at=NOW - timedelta(days=rng.randint(0, 5), hours=1),
        )
        for _ in range(10)
    ]

    def about(o: dict[str, Any]) -> dict[str, Any]:
        p = o["payload"]
        return {"order_id": p["order_id"], "outlet_id": p["outlet_id"], "distributor_id": p["distributor_id"]}

    def cancel(o: dict[str, Any]) -> dict[str, Any]:
        return event("OrderCancelled", {**about(o), "reason": "shop closed"})

    def deliver(o: dict[str, Any], delivery_id: str) -> dict[str, Any]:
        lines = [{"sku_id": line["sku_id"], "quantity": line["quantity"]} for line in o["payload"]["lines"]]
        return event("OrderDelivered", {**about(o), "delivery_id": delivery_id, "lines": lines})

    early_cancel = cancel(orders[0])  # reaches the services before its order
    delivery = deliver(orders[2], "DLV-1")
    resent_delivery = {**delivery, "event_id": str(uuid.uuid4())}  # a DMS re-export: a duplicate
    returns = [
        event(
            "ReturnRecorded",
            {
                "return_id": f"RET-{i}",
                "distributor_id": OUTLETS[outlet],
                "outlet_id": outlet if direction == "from_retailer" else None,
                "direction": direction,
                "reason": reason,
                "lines": [{"sku_id": sku, "quantity": quantity}],
            },
            occurred_at=NOW - timedelta(days=1),
        )
        for i, (outlet, direction, reason, sku, quantity) in enumerate(
            [
                ("O1", "from_retailer", "damaged", "S1", 2),
                ("O4", "from_retailer", "expired", "S3", 1),
                ("O3", "to_company", "expired", "S2", 5),
            ]
        )
    ]
    batches = [
        [early_cancel],
        orders,
        [cancel(orders[1]), delivery, cancel(orders[2]), *returns],  # orders[2] was delivered: its cancel is void
        [resent_delivery],
    ]

    expected: dict[str, dict[str, Decimal | int]] = defaultdict(lambda: defaultdict(int))
    for i, o in enumerate(orders):
        cell = expected[o["payload"]["outlet_id"]]
        for line in o["payload"]["lines"]:
            value = Decimal(line["unit_price"]) * line["quantity"]
            cell["ordered_value"] += value
            cell["ordered_units"] += line["quantity"]
            if i in (0, 1):
                cell["cancelled_value"] += value
                cell["cancelled_units"] += line["quantity"]
            else:
                cell["value"] += value
                cell["units"] += line["quantity"]
                cell["lines"] += 1
            if i == 2:
                cell["delivered_units"] += line["quantity"]
    for r in returns[:2]:
        p = r["payload"]
        cell = expected[p["outlet_id"]]
        line = p["lines"][0]
        value = Decimal(SKUS[line["sku_id"]][1]) * line["quantity"]
        cell["returned_value"] += value
        cell["returned_units"] += line["quantity"]
        cell[f"returned_{p['reason']}_units"] += line["quantity"]
        cell["value"] -= value
        cell["units"] -= line["quantity"]
    return batches, expected


class Stack:
    def __init__(self, services: dict[str, ServiceProcess], tokens: Tokens) -> None:
        self.order_capture, self.query_api, self.tokens = services["order-capture"], services["query-api"], tokens

    async def get(self, path: str, **params: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.query_api.url, headers=self.tokens.header("analyst")) as client:
            return await client.get(path, params={**RANGE, **params}, timeout=10)

    async def json(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.get(path, **params)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def stack_and_expected(infra: Infra, tokens: Tokens) -> Iterator[tuple[Stack, dict[str, dict[str, Decimal | int]]]]:
    batches, expected = history(seed=14)
    with running_with_reference_data(infra, tokens, ["order-capture", "query-api"]) as services:
        stack = Stack(services, tokens)
        for batch in batches:
            Api(services, tokens).post(batch)
        total_delivered = sum(int(cell["delivered_units"]) for cell in expected.values())

        async def settled() -> dict[str, Any]:
            return await stack.json("/v1/sales")

        asyncio.run(
            eventually(
                settled,
                lambda body: (
                    body["total"]["delivered_units"] == total_delivered
                    and body["total"]["returned_units"] == sum(int(c["returned_units"]) for c in expected.values())
                    and body["total"]["cancelled_units"] == sum(int(c["cancelled_units"]) for c in expected.values())
                ),
                timeout=30,
                what="every event applied",
            )
        )
        yield stack, expected


FIGURES = (
    "value",
    "units",
    "lines",
    "ordered_value",
    "ordered_units",
    "cancelled_value",
    "cancelled_units",
    "returned_value",
    "returned_units",
    "returned_damaged_units",
    "returned_expired_units",
    "delivered_units",
)


def figures(row: dict[str, Any]) -> dict[str, Decimal | int]:
    return {name: Decimal(row[name]) if name.endswith("value") else row[name] for name in FIGURES}


async def test_each_outlet_shows_net_sales_and_what_makes_them_up(
    stack_and_expected: tuple[Stack, dict[str, dict[str, Decimal | int]]],
) -> None:
    stack, expected = stack_and_expected
    by_outlet = {row["id"]: figures(row) for row in (await stack.json("/v1/sales", level="outlet"))["rows"]}
    assert by_outlet == {
        outlet: {name: Decimal(cell[name]) if name.endswith("value") else cell[name] for name in FIGURES}
        for outlet, cell in expected.items()
    }
    national = (await stack.json("/v1/sales"))["total"]
    assert Decimal(national["value"]) == Decimal(national["ordered_value"]) - Decimal(
        national["cancelled_value"]
    ) - Decimal(national["returned_value"])


def cells() -> Iterator[dict[str, str]]:
    """Drill-down cells: every node of every level, alone and with a SKU, brand or rep filter."""
    nodes = [("zone", z) for z in {z for z, _ in REGIONS.values()}]
    nodes += [("region", r) for r in REGIONS] + [("distributor", d) for d in DISTRIBUTORS]
    nodes += [("outlet", o) for o in OUTLETS]
    yield {}
    for sku in SKUS:
        yield {"sku": sku}
    yield {"brand": "Sunrise Tea"}
    for rep in REPS:
        yield {"rep": rep}
    for level, node in nodes:
        yield {level: node}
        yield {level: node, "sku": "S1"}
        yield {level: node, "brand": "Koko Biscuits"}


async def cell_value(stack: Stack, cell: dict[str, str]) -> tuple[Decimal, int]:
    """The drill-down's (or, for a rep, the KPI API's) net value and units of one cell."""
    if "rep" in cell:
        rows = (await stack.json("/v1/sales/by", dimension="rep"))["rows"]
        row: dict[str, Any] = next((r for r in rows if r["id"] == cell["rep"]), {"value": "0", "units": 0})
        return Decimal(row["value"]), int(row["units"])
    levels = ("outlet", "distributor", "region", "zone")
    level = next((name for name in levels if name in cell), None)
    params = {k: v for k, v in cell.items() if k in ("sku", "brand")}
    if level is None:
        total = (await stack.json("/v1/sales", **params))["total"]
        return Decimal(total["value"]), total["units"]
    body = await stack.json("/v1/sales", level=level, **params, limit=5000)
    row = next((r for r in body["rows"] if r["id"] == cell[level]), {"value": "0", "units": 0})
    return Decimal(row["value"]), int(row["units"])


async def test_the_events_behind_every_cell_sum_to_it_page_by_page(
    stack_and_expected: tuple[Stack, dict[str, dict[str, Decimal | int]]],
) -> None:
    stack, _ = stack_and_expected
    checked = 0
    for cell in cells():
        value, units = await cell_value(stack, cell)
        listed_value, listed_units, cursor, pages = Decimal(0), 0, None, 0
        while True:
            page = await stack.json("/v1/sales/events", **cell, limit=3, **({"cursor": cursor} if cursor else {}))
            listed_value += sum((Decimal(r["value"]) for r in page["rows"]), Decimal(0))
            listed_units += sum(r["units"] for r in page["rows"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (listed_value, listed_units) == (value, units), cell
        assert (Decimal(page["total"]["value"]), page["total"]["units"]) == (value, units), cell
        checked += 1
    assert checked > 40


async def test_events_carry_where_and_when_they_were_captured_and_export_as_csv(
    stack_and_expected: tuple[Stack, dict[str, dict[str, Decimal | int]]],
) -> None:
    stack, _ = stack_and_expected
    rows = (await stack.json("/v1/sales/events", limit=1000))["rows"]
    kinds = {r["event_type"] for r in rows}
    assert kinds == {"OrderCaptured", "OrderCancelled", "ReturnRecorded"}
    orders = [r for r in rows if r["event_type"] == "OrderCaptured"]
    assert all(r["lat"] == 28.6 and r["accuracy_m"] == 12.0 and r["source"] == "test-device" for r in orders)
    assert all(r["sync_delay_seconds"] is not None and r["sync_delay_seconds"] > 0 for r in orders)
    assert all(Decimal(r["value"]) < 0 for r in rows if r["event_type"] != "OrderCaptured")

    response = await stack.get("/v1/sales/events", format="csv", limit=1000)
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == len(rows)
    assert sum(Decimal(r["value"]) for r in table) == sum(Decimal(r["value"]) for r in rows)

    bad = await stack.get("/v1/sales/events", cursor="not-a-cursor")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_rankings_the_map_and_breakdowns_read_net_sales_too(
    stack_and_expected: tuple[Stack, dict[str, dict[str, Decimal | int]]],
) -> None:
    stack, expected = stack_and_expected
    net = {outlet: Decimal(cell["value"]) for outlet, cell in expected.items()}

    ranking = await stack.json("/v1/outlets/ranking", n=100)
    assert {r["id"]: Decimal(r["value"]) for r in ranking["rows"] if r["id"] in net} == net
    outlets_on_map = (await stack.json("/v1/outlets/map"))["outlets"]
    assert {o["id"]: Decimal(o["value"]) for o in outlets_on_map if o["id"] in net} == net
    for outlet, value in net.items():
        by_sku = await stack.json("/v1/sales/by", dimension="sku", within=outlet)
        assert sum((Decimal(r["value"]) for r in by_sku["rows"]), Decimal(0)) == value, outlet
    by_distributor = await stack.json("/v1/sales/by", dimension="distributor")
    for distributor in DISTRIBUTORS:
        expected_value = sum((v for o, v in net.items() if OUTLETS[o] == distributor), Decimal(0))
        row = next((r for r in by_distributor["rows"] if r["id"] == distributor), {"value": "0"})
        assert Decimal(row["value"]) == expected_value, distributor
