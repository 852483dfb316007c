"""Two instances of a consumer service in one group split the partitions and together produce exactly the
projection one instance would."""

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, SKUS, Totals, expected_by_level, order, reference_events
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "query-api"]) as running:
        second = ServiceProcess(
            "query-api", free_port(), dict(running["query-api"].env), infra.work_dir / "query-api-2.log"
        )
        second.start()
        try:
            yield {**running, "query-api-2": second}
        finally:
            second.stop()


def applied_by(service: ServiceProcess) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sellthrough_consumer_events_applied_total"
        and sample.labels.get("group") == "query-api.projections"
        and sample.labels.get("topic") == "sellthrough.trade.v1"
    )


async def distributor_totals(service: ServiceProcess, tokens: Tokens) -> dict[str, Totals]:
    async with httpx.AsyncClient(base_url=service.url, headers=tokens.header("analyst")) as client:
        body = (await client.get("/v1/sales", params={"level": "distributor"})).json()
    return {r["id"]: Totals(Decimal(r["value"]), r["units"], r["lines"]) for r in body.get("rows", [])}


async def test_two_instances_split_partitions_and_produce_the_same_projection(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    def post(events: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(
            f"{services['order-capture'].url}/v1/events",
            json={"events": events},
            headers=tokens.header("admin"),
            timeout=30,
        )

    assert post(reference_events()).status_code == 200
    wait_for_masters(services["order-capture"].url, tokens.issued["admin"].token, reference_events())
    rng = random.Random(5)
    orders: list[dict[str, Any]] = [
        order(rng.choice(list(OUTLETS)), [(rng.choice(list(SKUS)), rng.randint(1, 9))]) for _ in range(400)
    ]
    for start in range(0, len(orders), 50):
        assert post(orders[start : start + 50]).json()["accepted"] == 50

    expected = expected_by_level(orders, "distributor")
    for instance in ("query-api", "query-api-2"):

        async def totals(name: str = instance) -> dict[str, Totals]:
            return await distributor_totals(services[name], tokens)

        await eventually(totals, lambda t: t == expected, timeout=60, what=f"exact totals read through {instance}")
    # Both members did part of the work: the group split the trade topic's partitions between them.
    first, second = applied_by(services["query-api"]), applied_by(services["query-api-2"])
    assert first > 0
    assert second > 0
    assert first + second >= len(orders)
