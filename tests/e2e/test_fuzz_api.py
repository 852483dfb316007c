"""Fuzz the OpenAPI of order-capture and query-api (real processes, real Postgres and broker) with schemathesis
and every one of its checks: no 5xx, no hang, no status, content type, header or body the document does not
declare, valid input accepted, invalid input refused, no route answering without its token; every error is
application/problem+json. A bounded run; `make chaos` is for more."""

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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, SKUS, order, reference_events
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = int(os.environ.get("SELLTHROUGH_FUZZ_EXAMPLES", "30"))
"""Bounded in `make test`; `make chaos` asks for many more. Split between valid and invalid input."""

CROSS_PARAMETER_RULES = {"invalid-parent", "invalid-range", "invalid-cursor"}
"""Problem types of a 422 to schema-valid input: rules between parameters the document states in words, and a
page cursor (opaque: any text is schema-valid, only those the endpoint gave out are accepted)."""

UNDOCUMENTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    # The fuzzing analyst makes more requests than a person's limit allows (429 is tested elsewhere).
    env = {"SELLTHROUGH_RATE_LIMIT_ANALYST": "1000000/hour"}
    with running_services(infra, tokens, ["order-capture", "query-api"], env) as running:
        yield running


def operations(service: ServiceProcess) -> list[Any]:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{service.url}/openapi.json").json())
    checks = schema.config.checks
    checks.update(included_check_names=["all"], max_response_time=10)
    # A batch over maxItems is refused as too large (413, documented): a refusal, as a 4xx on this list is.
    checks.negative_data_rejection.expected_statuses = [*checks.negative_data_rejection.expected_statuses, "413"]
    # Rules across parameters, which an OpenAPI parameter list cannot state (a parent_id only below national,
    # from before to), refuse schema-valid input with 422; `check` makes sure such a 422 is one of them.
    checks.positive_data_acceptance.expected_statuses = [*checks.positive_data_acceptance.expected_statuses, "422"]
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def check(case: Any, base_url: str, headers: dict[str, str]) -> None:
    """Every check of schemathesis (all enabled in `operations`), then the problem+json rule."""
    # The token goes into the case itself: an invalid case may have dropped it (the bearer scheme reads as a
    # required header), and the checks judge what was sent, which then always carries it.
    case.headers = {**(case.headers or {}), **headers}
    response = case.call_and_validate(base_url=base_url, headers=headers, timeout=10)
    if response.status_code >= 400:
        assert response.headers["content-type"] == ["application/problem+json"], response.text
        assert response.json()["status"] == response.status_code
    if response.status_code == 422 and case.meta.generation.mode is GenerationMode.POSITIVE:
        slug = response.json()["type"].rsplit("/", 1)[-1]
        assert slug in CROSS_PARAMETER_RULES, f"schema-valid input refused: {response.text}"


def fuzz(service: ServiceProcess, headers: dict[str, str]) -> list[str]:
    """Run every operation of the service's OpenAPI through generated cases, valid and invalid; returns the
    operations run."""
    labels = []
    for operation in operations(service):
        # Invalid input needs something to make invalid: a parameter or a body.
        inputs = operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if inputs else (GenerationMode.POSITIVE,):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=max(1, EXAMPLES_PER_OPERATION // 2),
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def run(case: Any) -> None:
                check(case, service.url, headers)

            try:
                run()
            except Unsatisfiable:
                # Inputs no value of which is invalid (a path segment of any text): nothing to refuse.
                assert mode is GenerationMode.NEGATIVE, operation.label
        labels.append(operation.label)
    return labels


def methods_are_refused_where_undocumented(service: ServiceProcess, headers: dict[str, str]) -> None:
    """schemathesis' unsupported_method check, which its own runner makes in a phase outside these strategies:
    a method the document does not list for a path answers 405 with Allow (RFC 9110), as problem+json."""
    document = httpx.get(f"{service.url}/openapi.json").json()
    for path, documented in document["paths"].items():
        url = service.url + path.replace("{", "").replace("}", "")
        for method in UNDOCUMENTED_METHODS:
            if method.lower() in documented:
                continue
            response = httpx.request(method, url, headers=headers, timeout=10)
            assert response.status_code == 405, f"{method} {path}: {response.status_code} {response.text}"
            assert set(response.headers["allow"].replace(" ", "").split(",")) >= {m.upper() for m in documented}
            assert response.headers["content-type"] == "application/problem+json"


def test_order_capture_answers_only_what_its_openapi_declares(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    assert {"POST /v1/events", "GET /metrics"} <= set(fuzz(services["order-capture"], tokens.header("admin")))
    methods_are_refused_where_undocumented(services["order-capture"], tokens.header("admin"))


def test_query_api_answers_only_what_its_openapi_declares(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    assert {"GET /v1/sales", "GET /v1/anomalies", "GET /dashboard"} <= set(
        fuzz(services["query-api"], tokens.header("analyst"))
    )
    methods_are_refused_where_undocumented(services["query-api"], tokens.header("analyst"))


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
