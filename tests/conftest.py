"""Real parts for every test that needs them: PostgreSQL (one server per session, a fresh database per module)
and a Kafka broker (a fresh, empty one per module: topic names are fixed by the contracts, so sharing one would
leak events between modules). Embedded by default (the Tansu broker starts in milliseconds); real containers
with SELLTHROUGH_TEST_BACKEND=containers (tests/support/backends.py)."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from sellthrough_devstack.tokens import IssuedToken, issue_tokens
from sellthrough_runtime.auth import Role
from sellthrough_runtime.kafka import ensure_topics
from tests.support.backends import kafka_broker, postgres_server
from tests.support.record_check import fail_on_contract_breaches

_database_numbers = itertools.count(1)


@dataclass(frozen=True)
class Infra:
    database_url: str
    kafka_bootstrap_servers: str
    work_dir: Path


@dataclass(frozen=True)
class Tokens:
    file: Path
    issued: dict[str, IssuedToken]

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issued[name].token}"}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's PostgreSQL server (tests/support/backends.py says which): its maintenance database."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def infra(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Infra]:
    name = f"test_{next(_database_numbers)}"

    async def create() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    work_dir = tmp_path_factory.mktemp("infra")
    with kafka_broker(work_dir) as bootstrap_servers:
        asyncio.run(ensure_topics(bootstrap_servers))
        yield Infra(postgres_url.rsplit("/", 1)[0] + f"/{name}", bootstrap_servers, work_dir)
        if request.module.__name__.startswith(E2E_PACKAGE):
            fail_on_contract_breaches(bootstrap_servers)


E2E_PACKAGE = "tests.e2e."
"""Modules whose services wrote every record on their broker: each must hold to its released schema. Integration
tests write deliberately broken records to exercise dead letters, so they are not checked. (test_chaos runs its
own broker and checks it the same way.)"""


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    directory = tmp_path_factory.mktemp("tokens")
    issued = issue_tokens(
        [
            ("admin", Role.ADMIN, "admin"),
            ("analyst", Role.ANALYST, "analyst"),
            ("connector", Role.CONNECTOR, "erp-1", {"distributors": ["D1", "D2", "D3"]}),
            ("rep1", Role.REP, "REP-1"),
            ("rep2", Role.REP, "REP-2"),
            ("manager_z1", Role.REGIONAL_MANAGER, "RM-Z1", {"geo_ids": ["Z1"]}),
            ("manager_r3", Role.REGIONAL_MANAGER, "RM-R3", {"geo_ids": ["R3"]}),
            ("distributor1", Role.DISTRIBUTOR, "D1"),
            ("connector_d1", Role.CONNECTOR, "erp-d1", {"distributors": ["D1"]}),
        ],
        directory / "tokens.json",
        directory / "tokens.env",
    )
    return Tokens(directory / "tokens.json", issued)


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(infra.database_url)
    yield conn
    await conn.close()


async def post_events(client: httpx.AsyncClient, headers: dict[str, str], events: Sequence[object]) -> httpx.Response:
    return await client.post("/v1/events", json={"events": events}, headers=headers)
