"""Real service processes for end-to-end tests, pointed at the module's database and broker."""

import contextlib
from collections.abc import Iterator

import httpx

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import reference_events


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
        for service in services.values():
            service.start()
        yield services
    finally:
        for service in services.values():
            service.stop()


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
