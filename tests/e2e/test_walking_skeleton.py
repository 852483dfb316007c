"""A field order travels HTTP -> outbox -> Kafka -> projection -> drill-down, through real service
processes, the embedded Postgres and the Tansu broker. Nothing is mocked."""

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, SKUS, Totals, expected_by_level, order, reference_events
from tests.support.services import running_services
from tests.support.waiting import PIPELINE_WAIT_SECONDS, eventually

pytestmark = pytest.mark.e2e

LEVELS = ("national", "zone", "region", "distributor", "outlet")
TODAY = datetime.now(UTC).date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY + timedelta(days=1))}


@dataclass
class Stack:
    order_capture: ServiceProcess
    query_api: ServiceProcess
    tokens: Tokens
    accepted_orders: list[dict[str, Any]] = field(default_factory=list)
    """Every order order-capture reported as accepted in this module: what the projection must show."""

    async def post(self, events: list[dict[str, Any]], token: str = "admin") -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.order_capture.url}/v1/events",
                json={"events": events},
                headers=self.tokens.header(token),
                timeout=30,
            )
        assert response.status_code == 200, response.text
        body = dict(response.json())
        self.accepted_orders += [
            event
            for event, result in zip(events, body["results"], strict=True)
            if result["status"] == "accepted" and event["event_type"] == "OrderCaptured"
        ]
        return body

    async def sales(self, **params: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.query_api.url, headers=self.tokens.header("analyst")) as client:
            response = await client.get("/v1/sales", params={**RANGE, **params}, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def stack(infra: Infra, tokens: Tokens) -> Iterator[Stack]:
    with running_services(infra, tokens, ["order-capture", "query-api"]) as services:
        running = Stack(services["order-capture"], services["query-api"], tokens)
        assert asyncio.run(running.post(reference_events()))["accepted"] == len(reference_events())
        yield running


def random_orders(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        order(
            rng.choice(list(OUTLETS)), [(sku, rng.randint(1, 12)) for sku in rng.sample(list(SKUS), rng.randint(1, 3))]
        )
        for _ in range(count)
    ]


def as_totals(body: dict[str, Any]) -> dict[str, Totals]:
    return {row["id"]: Totals(Decimal(row["value"]), row["units"], row["lines"]) for row in body["rows"]}


async def wait_for_totals(stack: Stack, timeout: float = PIPELINE_WAIT_SECONDS) -> None:
    """Every drill level reports exactly the totals recomputed from the orders accepted so far."""
    for level in LEVELS:
        expected = expected_by_level(stack.accepted_orders, level)

        async def probe(level: str = level) -> dict[str, Any]:
            return await stack.sales(level=level)

        def matches(body: dict[str, Any], expected: dict[str, Totals] = expected) -> bool:
            return as_totals(body) == expected

        await eventually(
            probe,
            matches,
            timeout=timeout,
            what=f"{level} totals",
        )


async def wait_until_masters_known(stack: Stack) -> None:
    async def status() -> dict[str, int]:
        async with httpx.AsyncClient(base_url=stack.order_capture.url, headers=stack.tokens.header("admin")) as c:
            return dict((await c.get("/v1/reference/status")).json())

    await eventually(status, lambda s: s["outlets"] == len(OUTLETS), what="reference data in order-capture")


async def test_posted_orders_appear_at_every_drill_level_and_resending_changes_nothing(stack: Stack) -> None:
    await wait_until_masters_known(stack)
    orders = random_orders(150, seed=1)

    accepted = await stack.post(orders[:100], token="admin")
    accepted_rest = await stack.post(orders[100:], token="admin")
    assert accepted["accepted"] + accepted_rest["accepted"] == 150

    await wait_for_totals(stack)

    again = await stack.post(orders[:100])
    assert (again["duplicate"], again["accepted"]) == (100, 0)
    sentinel = order("O5", [("S3", 1)])
    assert (await stack.post([sentinel]))["accepted"] == 1
    # Once the sentinel, posted after the duplicates, is visible, any double count would be too.
    await wait_for_totals(stack)

    national = await stack.sales(level="national")
    assert stack.accepted_orders == [*orders, sentinel]
    assert national["total"]["lines"] == sum(len(o["payload"]["lines"]) for o in stack.accepted_orders)
    assert national["freshness"]["newest_recorded_at"] is not None
    assert national["freshness"]["lag_events"] == 0, "everything published to the trade topic is applied"
    assert national["freshness"]["lag_measured_at"] is not None


async def test_drilling_down_under_a_parent_and_filtering_by_brand(stack: Stack) -> None:
    await stack.post(random_orders(40, seed=3))
    await wait_for_totals(stack)
    orders = stack.accepted_orders
    regions_of_z1 = await stack.sales(level="region", parent_id="Z1")
    outlets_of_d1 = await stack.sales(level="outlet", parent_id="D1")
    tea = await stack.sales(level="national", brand="Sunrise Tea")

    assert {row["id"] for row in regions_of_z1["rows"]} <= {"R1", "R2"}
    assert as_totals(regions_of_z1) == {
        k: v for k, v in expected_by_level(orders, "region").items() if k in ("R1", "R2")
    }
    assert {row["id"] for row in outlets_of_d1["rows"]} <= {"O1", "O2"}
    tea_value = sum(
        Decimal(line["unit_price"]) * line["quantity"]
        for o in orders
        for line in o["payload"]["lines"]
        if SKUS[line["sku_id"]][0] == "Sunrise Tea"
    )
    assert Decimal(tea["total"]["value"]) == tea_value


async def test_bad_query_parameters_get_problem_json(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.query_api.url, headers=stack.tokens.header("analyst")) as client:
        unknown_level = await client.get("/v1/sales", params={"level": "planet"})
        reversed_range = await client.get("/v1/sales", params={"from": "2026-05-02", "to": "2026-05-01"})
        unknown_parent = await client.get("/v1/sales", params={"level": "region", "parent_id": "Z-NOPE"})
        not_a_date = await client.get("/v1/sales", params={"from": "yesterday"})
        no_token = await client.get("/v1/sales", headers={"Authorization": ""})
        rep_token = await client.get("/v1/sales", headers=stack.tokens.header("rep1"))

    for response, status in (
        (unknown_level, 422),
        (reversed_range, 422),
        (unknown_parent, 404),
        (not_a_date, 422),
        (no_token, 401),
        (rep_token, 403),
    ):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_killing_the_query_api_mid_stream_leaves_totals_exact(stack: Stack) -> None:
    stream = random_orders(600, seed=2)
    batches = [stream[i : i + 50] for i in range(0, len(stream), 50)]

    for batch in batches[:4]:
        await stack.post(batch)
    stack.query_api.kill()  # SIGKILL, possibly mid-batch: no shutdown hook runs
    for batch in batches[4:9]:
        await stack.post(batch)
    stack.query_api.start()
    for batch in batches[9:]:
        await stack.post(batch)

    # After a crash the group waits for the dead member's session to expire before reassigning.
    await wait_for_totals(stack, timeout=60)
    assert len(stack.accepted_orders) >= len(stream)
