"""Fuzz the OpenAPI of order-capture and query-api (real processes, real Postgres and broker): whatever the
input, no 5xx, no hang, and every 4xx is application/problem+json. A bounded run; `make chaos` is for more."""

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, SKUS, order, reference_events
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = int(os.environ.get("SELLTHROUGH_FUZZ_EXAMPLES", "30"))
"""Bounded in `make test`; `make chaos` asks for many more."""


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "query-api"]) as running:
        yield running


def operations(service: ServiceProcess) -> list[Any]:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{service.url}/openapi.json").json())
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def check(case: Any, base_url: str, headers: dict[str, str]) -> None:
    response = case.call(base_url=base_url, headers=headers, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert response.headers["content-type"] == ["application/problem+json"], response.text
        assert response.json()["status"] == response.status_code


def fuzz(service: ServiceProcess, headers: dict[str, str]) -> list[str]:
    """Run every operation of the service's OpenAPI through generated cases; returns the operations run."""
    labels = []
    for operation in operations(service):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            check(case, service.url, headers)

        run()
        labels.append(operation.label)
    return labels


def test_order_capture_never_fails_with_a_server_error(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    assert "POST /v1/events" in fuzz(services["order-capture"], tokens.header("admin"))


def test_query_api_never_fails_with_a_server_error(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    assert "GET /v1/sales" in fuzz(services["query-api"], tokens.header("analyst"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=6,
)


@st.composite
def mutated_orders(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with one part broken: a value replaced by any JSON, a field dropped or one added."""
    lines = draw(st.lists(st.tuples(st.sampled_from(sorted(SKUS)), st.integers(1, 50)), min_size=1, max_size=4))
    event = order(draw(st.sampled_from(sorted(OUTLETS))), lines)
    parent, key = draw(st.sampled_from(_paths(event)))
    mutation = draw(st.sampled_from(("replace", "drop", "add", "none")))
    if mutation == "replace":
        parent[key] = draw(JSON_VALUES)
    elif mutation == "drop":
        del parent[key]
    elif mutation == "add" and isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
    return event


def _paths(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, to pick one to break."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    found = []
    for key, child in items:
        found.append((node, key))
        if isinstance(child, dict | list) and child:
            found.extend(_paths(child))
    return found


def test_broken_event_payloads_are_rejected_per_event_and_accepted_ones_reach_the_projection(
    services: dict[str, ServiceProcess], tokens: Tokens, infra: Infra
) -> None:
    order_capture = services["order-capture"]
    admin = tokens.header("admin")
    references = reference_events()
    assert httpx.post(f"{order_capture.url}/v1/events", json={"events": references}, headers=admin).is_success
    wait_for_masters(order_capture.url, tokens.issued["admin"].token, references)
    before = projected_lines(infra)  # whatever earlier fuzzing got accepted
    accepted_lines = before
    outcomes: Counter[str] = Counter()

    @given(batch=st.lists(mutated_orders(), min_size=1, max_size=20))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def post(batch: list[dict[str, Any]]) -> None:
        nonlocal accepted_lines
        response = httpx.post(f"{order_capture.url}/v1/events", json={"events": batch}, headers=admin, timeout=10)
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            assert response.headers["content-type"] == "application/problem+json", response.text
            return
        for event, result in zip(batch, response.json()["results"], strict=True):
            assert result["status"] in ("accepted", "duplicate", "rejected"), result
            outcomes[result["status"]] += 1
            if result["status"] == "rejected":
                assert result["reason"], result
            elif result["status"] == "accepted":
                accepted_lines += len(event["payload"]["lines"])

    post()

    # Every accepted order is in the projection (a mutated date may put it on any day, so count every day).
    deadline = time.monotonic() + 30
    while projected_lines(infra) != accepted_lines and time.monotonic() < deadline:
        time.sleep(0.2)
    assert projected_lines(infra) == accepted_lines
    assert accepted_lines > before, f"no generated order was valid: {outcomes}"
    assert outcomes["rejected"] > 0, f"no generated order was broken: {outcomes}"


def projected_lines(infra: Infra) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(infra.database_url)
        try:
            return int(await conn.fetchval("SELECT coalesce(sum(lines), 0) FROM query_api.sales_daily"))
        finally:
            await conn.close()

    return asyncio.run(count())
