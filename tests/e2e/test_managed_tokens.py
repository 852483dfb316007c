"""Tokens managed with `sellthrough-tokens` against the real services: order-capture with two worker processes and
query-api, sharing the token store. A new token works at once; a revocation and a rotation's end reach every worker
within seconds, with no restart; expiry is exact; the static tokens file still works beside the store; the
database never holds a plain token."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

REFRESH_SECONDS = 1.0
REVOCATION_DEADLINE = REFRESH_SECONDS + 4.0
"""A revocation is seen at the next refresh of each process: a second here, plus slack for a loaded machine."""
CLI = Path(sys.executable).parent / "sellthrough-tokens"
ROUNDS = 16
"""Requests per check, each on a new connection, so the kernel spreads them over order-capture's workers."""
GRACE_S = 8  # the rotation test's grace: its checks within the grace take a few seconds on a loaded box

issued_in_this_module: list[str] = []


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    env = {"SELLTHROUGH_TOKEN_REFRESH_SECONDS": str(REFRESH_SECONDS), "SELLTHROUGH_HTTP_WORKERS": "2"}
    with running_services(infra, tokens, ["order-capture", "query-api"], env) as running:
        yield running


def tokens_cli(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"DATABASE_URL": infra.database_url, "PATH": "/usr/bin:/bin"},
    )


def issue(infra: Infra, *args: str) -> str:
    result = tokens_cli(infra, "issue", *args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    issued_in_this_module.append(token)
    return token


def token_id(infra: Infra, token: str) -> int:
    listing = tokens_cli(infra, "list")
    assert token not in listing.stdout + listing.stderr
    with psycopg.connect(infra.database_url) as conn:
        row = conn.execute("SELECT id FROM auth.tokens WHERE hash = encode(sha256(%s::bytea), 'hex')", [token])
        (found,) = row.fetchone() or (None,)
    assert isinstance(found, int)
    return found


def whoami(service: ServiceProcess, token: str) -> httpx.Response:
    return httpx.get(f"{service.url}/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def statuses(services: dict[str, ServiceProcess], token: str) -> list[tuple[int, str]]:
    """(status, problem slug or subject) of ROUNDS requests to each service, each on a new connection."""
    answers = []
    for service in services.values():
        for _ in range(ROUNDS):
            response = whoami(service, token)
            body = response.json()
            answers.append((response.status_code, body.get("subject") or body.get("type", "").rsplit("/", 1)[-1]))
    return answers


def refused_everywhere_within(
    services: dict[str, ServiceProcess], token: str, deadline: float
) -> tuple[float, set[str]]:
    """Seconds until every request with `token` is refused by every service (and worker); the slugs seen then."""
    started = time.monotonic()
    while True:
        answers = statuses(services, token)
        if all(status == 401 for status, _ in answers):
            return time.monotonic() - started, {slug for _, slug in answers}
        assert time.monotonic() - started < deadline, f"still accepted after {deadline}s: {answers}"
        time.sleep(0.2)


def test_a_new_token_works_at_once_on_every_service_with_its_scope(
    infra: Infra, services: dict[str, ServiceProcess]
) -> None:
    token = issue(infra, "--role", "rep", "--subject", "REP-1", "--device", "phone-1", "--label", "e2e")
    answers = statuses(services, token)
    assert answers == [(200, "REP-1")] * len(answers)
    body = whoami(services["order-capture"], token).json()
    assert body == {"role": "rep", "subject": "REP-1", "device_id": "phone-1", "distributors": [], "geo_ids": []}
    manager = issue(infra, "--role", "regional_manager", "--subject", "RM-9", "--geo", "Z1", "--geo", "R3")
    assert whoami(services["query-api"], manager).json()["geo_ids"] == ["R3", "Z1"]


def test_the_tokens_file_still_works_beside_the_store(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    assert whoami(services["order-capture"], tokens.issued["admin"].token).json()["role"] == "admin"
    unknown = whoami(services["query-api"], "stk_not-a-token")
    assert unknown.status_code == 401
    assert unknown.json()["type"].endswith("/unauthorized")


def test_a_revoked_token_is_refused_by_every_worker_within_seconds_without_a_restart(
    infra: Infra, services: dict[str, ServiceProcess]
) -> None:
    token = issue(infra, "--role", "analyst", "--subject", "to-revoke")
    pids = {name: service.process.pid for name, service in services.items() if service.process}
    # Every worker has it in memory now (refused only if the refresh, not a fresh lookup, sees the revocation).
    assert statuses(services, token) == [(200, "to-revoke")] * ROUNDS * len(services)
    real_route = httpx.get(
        f"{services['order-capture'].url}/v1/reference/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert real_route.status_code == 200, real_route.text

    result = tokens_cli(infra, "revoke", str(token_id(infra, token)))
    assert result.returncode == 0, result.stderr
    took, slugs = refused_everywhere_within(services, token, REVOCATION_DEADLINE)
    assert slugs == {"token-revoked"}
    assert all(status == 401 for status, _ in statuses(services, token))  # and it stays refused
    assert {name: service.process.pid for name, service in services.items() if service.process} == pids
    assert all(service.process and service.process.poll() is None for service in services.values())
    print(f"revocation effective everywhere after {took:.1f}s")


def test_rotation_gives_a_new_token_at_once_and_ends_the_old_one_after_the_grace(
    infra: Infra, services: dict[str, ServiceProcess]
) -> None:
    old = issue(infra, "--role", "connector", "--subject", "erp-9", "--distributor", "D1", "--expires-in", "30d")
    assert statuses(services, old) == [(200, "erp-9")] * ROUNDS * len(services)
    # A grace the checks below fit in on a loaded box (3 s was not: the old token expired mid-check once).
    result = tokens_cli(infra, "rotate", str(token_id(infra, old)), "--grace", f"{GRACE_S}s")
    grace_over_by = time.monotonic() + GRACE_S
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    issued_in_this_module.append(new)
    assert new != old
    assert whoami(services["order-capture"], new).json()["distributors"] == ["D1"]
    assert statuses(services, old) == [(200, "erp-9")] * ROUNDS * len(services)  # still within the grace
    time.sleep(max(0.0, grace_over_by - time.monotonic()))
    _, slugs = refused_everywhere_within(services, old, REVOCATION_DEADLINE)
    assert slugs == {"token-expired"}
    assert statuses(services, new) == [(200, "erp-9")] * ROUNDS * len(services)


def test_an_expired_token_is_refused(infra: Infra, services: dict[str, ServiceProcess]) -> None:
    token = issue(infra, "--role", "analyst", "--subject", "short-lived", "--expires-in", "2s")
    assert whoami(services["query-api"], token).status_code == 200
    time.sleep(2.2)
    # Expiry is checked on each request, so no refresh is waited for.
    answers = statuses(services, token)
    assert answers == [(401, "token-expired")] * len(answers)


def test_the_database_never_holds_a_plain_token(infra: Infra) -> None:
    assert len(issued_in_this_module) >= 5
    with psycopg.connect(infra.database_url) as conn:
        dumped = " ".join(str(value) for row in conn.execute("SELECT * FROM auth.tokens") for value in row)
    for token in issued_in_this_module:
        assert token not in dumped
        assert token[4:24] not in dumped
