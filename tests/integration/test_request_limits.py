"""Per-token rate limits, costly reads and token expiry over HTTP, on every authenticated route of the services
that have any (order-capture, query-api; stock-ledger and scheme-engine serve only health and metrics), in
process against the real embedded Postgres and Tansu broker, and with order-capture's worker processes."""

import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from order_capture.main import create_app as order_capture_app
from order_capture.settings import OrderCaptureSettings
from query_api.main import create_app as query_api_app
from query_api.settings import QueryApiSettings
from sellthrough_devstack.tokens import issue_tokens
from sellthrough_runtime.auth import Role, hash_token
from tests.conftest import Infra, Tokens
from tests.support.services import running_services

PROBLEM = "application/problem+json"
LIMIT = 3
ADMIN_LIMIT = 50


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client,
    ):
        yield client


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Live tokens, plus one that expired a minute ago."""
    directory = tmp_path_factory.mktemp("limit-tokens")
    issued = issue_tokens(
        [
            ("analyst", Role.ANALYST, "analyst-limited"),
            ("connector", Role.CONNECTOR, "erp-limited"),
            ("admin", Role.ADMIN, "admin"),
            ("loader", Role.ADMIN, "admin-loader"),
            ("reader_a", Role.ANALYST, "analyst-a"),
            ("reader_b", Role.ANALYST, "analyst-b"),
        ],
        directory / "tokens.json",
        directory / "tokens.env",
    )
    document = (directory / "tokens.json").read_text()
    expired = {
        "sha256": hash_token("expired-token"),
        "role": "analyst",
        "subject": "former-analyst",
        "expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    (directory / "tokens.json").write_text(
        document.replace('"tokens": [', '"tokens": [' + json.dumps(expired) + ",", 1)
    )
    tokens = {name: t.token for name, t in issued.items()} | {"expired": "expired-token"}
    return directory / "tokens.json", tokens


@pytest.fixture(scope="module")
def settings(infra: Infra, token_file: tuple[Path, dict[str, str]]) -> dict[str, Any]:
    return {
        "database_url": infra.database_url,
        "kafka_bootstrap_servers": infra.kafka_bootstrap_servers,
        "tokens_file": token_file[0],
        "rate_limit_analyst": f"{LIMIT}/minute",
        "rate_limit_connector": f"{LIMIT}/minute",
        # Per hour: the estimate of a sliding window over a few seconds of test is then the plain count.
        "rate_limit_admin": f"{ADMIN_LIMIT}/hour",
        # rate_limit_rep keeps its default
    }


@pytest.fixture(scope="module")
async def order_capture(settings: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(order_capture_app(OrderCaptureSettings(**settings))) as client:
        yield client


@pytest.fixture(scope="module")
async def query_api(settings: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(query_api_app(QueryApiSettings(**settings))) as client:
        yield client


def bearer(token_file: tuple[Path, dict[str, str]], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_file[1][name]}"}


async def api_operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, path) of every /v1 operation the service documents, path parameters filled in. Every /v1
    route authenticates its caller (health, readiness, metrics and the dashboard page are outside /v1)."""
    document = (await client.get("/openapi.json")).json()
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "X-1", path))
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    )


def rate_limited_total(metrics_text: str, service: str, role: str) -> float:
    pattern = rf'^sellthrough_rate_limited_total\{{role="{role}",service="{service}"\}} (\S+)$'
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def assert_every_route_refuses(client: httpx.AsyncClient, routes: list[tuple[str, str]], headers: dict[str, str]):
    for method, path in routes:
        response = await client.request(method, path, headers=headers, json={"events": []})
        assert response.status_code == 429, f"{method} {path}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/too-many-requests")
        # At most two windows: the count of this one has to slide out of the next (ratelimit.py).
        assert 1 <= int(response.headers["retry-after"]) <= 120, response.headers


async def test_every_authenticated_order_capture_route_is_rate_limited_per_token(
    order_capture: httpx.AsyncClient, token_file: tuple[Path, dict[str, str]]
) -> None:
    client = order_capture
    routes = await api_operations(client)
    assert routes == [("GET", "/v1/reference/status"), ("GET", "/v1/whoami"), ("POST", "/v1/events")]
    for _ in range(LIMIT):
        ok = await client.get("/v1/reference/status", headers=bearer(token_file, "connector"))
        assert ok.status_code == 200, ok.text
    before = rate_limited_total((await client.get("/metrics")).text, "order-capture", "connector")

    await assert_every_route_refuses(client, routes, bearer(token_file, "connector"))

    after = rate_limited_total((await client.get("/metrics")).text, "order-capture", "connector")
    assert after - before == len(routes)
    # Another token is not slowed by this one; health, readiness and metrics are never limited.
    assert (await client.get("/v1/reference/status", headers=bearer(token_file, "admin"))).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_every_authenticated_query_api_route_is_rate_limited_per_token(
    query_api: httpx.AsyncClient, token_file: tuple[Path, dict[str, str]]
) -> None:
    client = query_api
    routes = await api_operations(client)
    assert {("GET", "/v1/sales"), ("GET", "/v1/kpis"), ("GET", "/v1/schemes/X-1")} <= set(routes)
    for _ in range(LIMIT):
        ok = await client.get("/v1/sales", headers=bearer(token_file, "analyst"))
        assert ok.status_code == 200, ok.text
    before = rate_limited_total((await client.get("/metrics")).text, "query-api", "analyst")

    await assert_every_route_refuses(client, routes, bearer(token_file, "analyst"))

    after = rate_limited_total((await client.get("/metrics")).text, "query-api", "analyst")
    assert after - before == len(routes)


async def test_a_batch_weighs_its_events_and_admin_is_limited_too(
    order_capture: httpx.AsyncClient, token_file: tuple[Path, dict[str, str]]
) -> None:
    """Counted in events, not requests: 30 + 20 events use up an admin limit of 50, however few the POSTs."""
    headers = bearer(token_file, "loader")
    for size in (30, 20):
        # Events without a type: rejected one by one after the batch is counted, which is all this needs.
        response = await order_capture.post("/v1/events", json={"events": [{}] * size}, headers=headers)
        assert response.status_code in (200, 403), response.text

    refused = await order_capture.get("/v1/reference/status", headers=headers)

    assert refused.status_code == 429, refused.text
    assert refused.json()["limit"] == f"{ADMIN_LIMIT} per 1 hour"
    assert int(refused.headers["retry-after"]) >= 1
    # The limit is the token's: another admin token is not slowed.
    assert (await order_capture.get("/v1/reference/status", headers=bearer(token_file, "admin"))).status_code == 200


def costly_reads(metrics_text: str, read: str, outcome: str) -> float:
    pattern = rf'^sellthrough_costly_reads_total\{{outcome="{outcome}",read="{read}",service="query-api"\}} (\S+)$'
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_anomalies_are_computed_once_per_question_and_scope(
    query_api: httpx.AsyncClient, token_file: tuple[Path, dict[str, str]]
) -> None:
    async def ask(reader: str, query: str) -> httpx.Response:
        response = await query_api.get(f"/v1/anomalies?{query}", headers=bearer(token_file, reader))
        assert response.status_code == 200, response.text
        return response

    async def computed() -> float:
        return costly_reads((await query_api.get("/metrics")).text, "anomalies", "computed")

    before = await computed()
    first = await ask("reader_a", "level=national&k=3")
    assert await computed() == before + 1
    hits = costly_reads((await query_api.get("/metrics")).text, "anomalies", "hit")

    again = await ask("reader_a", "k=3&level=national")  # the same question, parameters in another order

    assert again.json() == first.json()
    assert await computed() == before + 1
    assert costly_reads((await query_api.get("/metrics")).text, "anomalies", "hit") == hits + 1
    # Another caller's scope, or another parameter, is another answer.
    await ask("reader_b", "level=national&k=3")
    assert await computed() == before + 2
    await ask("reader_a", "level=national&k=4")
    assert await computed() == before + 3


def test_workers_of_one_instance_share_one_limit(infra: Infra, tokens: Tokens) -> None:
    """order-capture serves from several processes by default; the limit is the token's, not each worker's."""
    limit = 10
    env = {"SELLTHROUGH_HTTP_WORKERS": "2", "SELLTHROUGH_RATE_LIMIT_ANALYST": f"{limit}/hour"}
    with running_services(infra, tokens, ["order-capture"], env) as running:
        url = running["order-capture"].url
        # A new connection per request: the kernel spreads them over the workers listening on the shared socket.
        statuses = [
            httpx.get(f"{url}/v1/reference/status", headers=tokens.header("analyst"), timeout=10).status_code
            for _ in range(3 * limit)
        ]
    assert statuses == [200] * limit + [429] * (2 * limit)


@pytest.mark.parametrize(("service", "path"), [("order_capture", "/v1/reference/status"), ("query_api", "/v1/sales")])
async def test_an_expired_token_is_refused_with_401(
    request: pytest.FixtureRequest, token_file: tuple[Path, dict[str, str]], service: str, path: str
) -> None:
    client: httpx.AsyncClient = request.getfixturevalue(service)
    response = await client.get(path, headers=bearer(token_file, "expired"))

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/token-expired")
    assert response.headers["www-authenticate"].startswith("Bearer")
