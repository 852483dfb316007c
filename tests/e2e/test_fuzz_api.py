"""Fuzz the OpenAPI of order-capture and query-api (real processes, real Postgres and broker): whatever the
input, no 5xx, no hang, and every 4xx is application/problem+json. A bounded run; `make chaos` is for more."""

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
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
