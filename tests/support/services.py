"""Real service processes for end-to-end tests, pointed at the module's database and broker."""

import contextlib
from collections.abc import Iterator

from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens


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
