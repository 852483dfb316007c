"""Real service processes for end-to-end tests, pointed at the module's database and broker."""

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.processes import free_port, stop_pid
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import reference_events

TEARDOWN_GRACE_SECONDS = 5.0
"""How long a module's services get to exit on SIGTERM at teardown before their process groups are killed. The
stack is thrown away with its database and broker, so nothing depends on a graceful exit here; a query-api
stopped before its projection consumer's first group join completed (Tansu answers it ~30 s after start on a
loaded 2-core machine) otherwise sat out ServiceProcess.stop's whole 10 s before its SIGKILL, in every module.
Tests that stop a service themselves still call ServiceProcess.stop (graceful, its own timeout)."""


def _each_at_once(services: Iterable[ServiceProcess], action: Callable[[ServiceProcess], Any]) -> None:
    """`action` on every service in threads of its own, so their waits overlap (a service's start is mostly
    waiting: on imports, migrations and its readiness probe), then the first failure, if any, is raised."""
    chosen = list(services)
    if not chosen:
        return
    with ThreadPoolExecutor(len(chosen)) as pool:
        for outcome in [pool.submit(action, service) for service in chosen]:
            outcome.result()


def start_all(services: Iterable[ServiceProcess]) -> None:
    """Start the services together and wait until each is ready. They may start in any order: each migrates
    only its own schema (under an advisory lock) and the module's topics exist before any starts, as when a
    deployment starts every replica at once."""
    _each_at_once(services, lambda service: service.start())


def stop_all(services: Iterable[ServiceProcess], grace: float = TEARDOWN_GRACE_SECONDS) -> None:
    """SIGTERM to every running service at once, then wait for them together (SIGKILL to each process group
    still there after `grace`)."""

    def stop(service: ServiceProcess) -> None:
        if service.process is not None:
            stop_pid(service.process.pid, timeout=grace)
            service.process.wait(timeout=10)
            service.process = None

    _each_at_once(services, stop)


@contextlib.contextmanager
def running_services(
    infra: Infra, tokens: Tokens, names: list[str], extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "SELLTHROUGH_TOKENS_FILE": str(tokens.file),
        "SELLTHROUGH_BUSINESS_TIMEZONE": "UTC",
        **(extra_env or {}),
    }
    services = {name: ServiceProcess(name, free_port(), env, infra.work_dir / f"{name}.log") for name in names}
    try:
        start_all(services.values())
        yield services
    finally:
        # Whatever the test left running (it may have stopped, killed or restarted some of them).
        stop_all(services.values())


@contextlib.contextmanager
def running_with_reference_data(
    infra: Infra, tokens: Tokens, names: list[str], extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, ServiceProcess]]:
    """running_services, with the test brand's reference data posted to order-capture and known to it."""
    with running_services(infra, tokens, names, extra_env) as running:
        url = running["order-capture"].url
        response = httpx.post(
            f"{url}/v1/events", json={"events": reference_events()}, headers=tokens.header("admin"), timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.text
        wait_for_masters(url, tokens.issued["admin"].token, reference_events())
        yield running
