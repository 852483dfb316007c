"""What the benchmark runs against: embedded PostgreSQL and Tansu brokers (or DATABASE_URL /
KAFKA_BOOTSTRAP_SERVERS when set), fresh databases, tokens, and the real service processes."""

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sellthrough_field.simulate import device_of

from bench.memory import PeakMemory
from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from sellthrough_devstack.tokens import IssuedToken, TokenSpec, device_token_name, issue_tokens
from sellthrough_runtime.auth import Role
from sellthrough_runtime.kafka import ensure_topics

# A production-like PostgreSQL for a 2-core, 20+ GiB machine; durability is left on (fsync, synchronous
# commit) unless --fast-unsafe is given.
LOGS = Path(__file__).parent / "logs"
"""The services' and brokers' logs of the last run are copied here."""

SERVER_SETTINGS = {"shared_buffers": "1GB", "work_mem": "64MB", "effective_cache_size": "4GB"}


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class Infra:
    work_dir: Path
    memory: PeakMemory
    fast_unsafe: bool = False
    server_url: str = ""
    postgres: EmbeddedPostgres | None = None
    brokers: list[EmbeddedBroker] = field(default_factory=list)
    services: list[ServiceProcess] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    external_postgres: bool = False
    external_kafka: str = ""

    @classmethod
    def start(cls, memory: PeakMemory, *, fast_unsafe: bool = False, device_reps: Sequence[str] = ()) -> "Infra":
        """`device_reps`: reps that get a token bound to their phone (the field scenario's devices)."""
        # As root, PostgreSQL runs as an unprivileged user that must reach its data directory: not 0700.
        work_dir = Path(tempfile.mkdtemp(prefix="sellthrough-bench-"))
        work_dir.chmod(0o755)
        infra = cls(work_dir, memory, fast_unsafe, external_kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
        try:
            if os.environ.get("DATABASE_URL"):
                infra.server_url = os.environ["DATABASE_URL"]
                infra.external_postgres = True
            else:
                infra._start_postgres()
            devices: list[TokenSpec] = [
                (device_token_name(r), Role.REP, r, {"device_id": device_of(r)}) for r in device_reps
            ]
            infra.tokens = issue_tokens(
                [("admin", Role.ADMIN, "admin"), ("analyst", Role.ANALYST, "analyst"), *devices],
                work_dir / "tokens.json",
                work_dir / "tokens.env",
                in_secrets_file={"admin", "analyst"},
            )
        except BaseException:
            infra.close()
            raise
        return infra

    def _start_postgres(self) -> None:
        postgres = EmbeddedPostgres(self.work_dir / "pg" / "data", free_port(), fast_unsafe=self.fast_unsafe)
        self.postgres = postgres
        postgres.start()

        async def configure() -> None:
            conn = await asyncpg.connect(postgres.url)
            try:
                for name, value in SERVER_SETTINGS.items():
                    await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            finally:
                await conn.close()

        asyncio.run(configure())
        postgres.stop()
        postgres.start()
        self.server_url = postgres.url

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name].token}"}

    async def create_database(self, label: str) -> str:
        """A new, empty database on the server; returns its URL."""
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.databases.append(name)
        return with_database(self.server_url, name)

    async def broker(self, label: str, partitions: Mapping[str, int] | None = None) -> str:
        """An empty embedded broker with the contracts' topics (or the external Kafka, shared); `partitions`
        replaces the contracts' partition counts of the topics it names (not on an external Kafka's existing
        topics)."""
        if self.external_kafka:
            await ensure_topics(self.external_kafka, partitions=partitions)
            return self.external_kafka
        broker = EmbeddedBroker(free_port(), self.work_dir / f"tansu-{label}.log")
        self.memory.watch(f"tansu ({label})", broker.start())
        self.brokers.append(broker)
        await ensure_topics(broker.bootstrap_servers, partitions=partitions)
        return broker.bootstrap_servers

    def device_tokens(self) -> dict[str, str]:
        """rep id -> its phone's token (Infra.start's `device_reps`)."""
        prefix = device_token_name("")
        return {n.removeprefix(prefix): t.token for n, t in self.tokens.items() if n.startswith(prefix)}

    def service_env(self, database_url: str, bootstrap_servers: str) -> dict[str, str]:
        return {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "SELLTHROUGH_TOKENS_FILE": str(self.work_dir / "tokens.json"),
            "SELLTHROUGH_BUSINESS_TIMEZONE": "UTC",
            # The load is posted as admin (and by the field scenario's phones), far faster than the finite default
            # limits allow: measured, not limited.
            "SELLTHROUGH_RATE_LIMIT_ADMIN": "unlimited",
            "SELLTHROUGH_RATE_LIMIT_REP": "unlimited",
        }

    def start_service(
        self,
        name: str,
        label: str,
        database_url: str,
        bootstrap_servers: str,
        extra_env: Mapping[str, str] | None = None,
    ) -> ServiceProcess:
        env = {**self.service_env(database_url, bootstrap_servers), **(extra_env or {})}
        service = ServiceProcess(name, free_port(), env, self.work_dir / f"{name}-{label}.log")
        self.memory.watch(f"{name} ({label})", service.start(timeout=120))
        self.services.append(service)
        return service

    def start_services(
        self,
        names: Sequence[tuple[str, str]],
        database_url: str,
        bootstrap_servers: str,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[ServiceProcess]:
        """Services (name, label) of one stack started together, each waited on until ready in a thread of its
        own: a start is mostly waiting (imports, migrations under an advisory lock, the readiness probe), so one
        after another a stack of three took three starts (~10 s each on a busy 2-core box) before any scenario
        ran. `extra_env` is keyed by label."""
        services = []
        for name, label in names:
            env = {**self.service_env(database_url, bootstrap_servers), **(extra_env or {}).get(label, {})}
            services.append(ServiceProcess(name, free_port(), env, self.work_dir / f"{name}-{label}.log"))
        self.services.extend(services)  # stopped by close() even if another fails to start
        with ThreadPoolExecutor(len(services)) as pool:
            pids = list(pool.map(lambda service: service.start(timeout=120), services))
        for (name, label), pid in zip(names, pids, strict=True):
            self.memory.watch(f"{name} ({label})", pid)
        return services

    def stop_service(self, service: ServiceProcess) -> None:
        service.stop()
        if service in self.services:
            self.services.remove(service)

    def stop_services(self, services: Sequence[ServiceProcess]) -> None:
        """stop_service on each at once: their graceful shutdowns overlap."""
        if services:
            with ThreadPoolExecutor(len(services)) as pool:
                list(pool.map(self.stop_service, services))

    def stop_broker(self, bootstrap_servers: str) -> None:
        """Stop the embedded broker at this address (none for the external Kafka)."""
        for broker in [b for b in self.brokers if b.bootstrap_servers == bootstrap_servers]:
            broker.stop()
            self.brokers.remove(broker)

    def close(self) -> None:
        for service in self.services:
            service.stop()
        for broker in self.brokers:
            broker.stop()
        if self.external_postgres and self.databases:
            asyncio.run(self._drop_databases())
        if self.postgres is not None:
            self.postgres.stop(mode="immediate")
        LOGS.mkdir(exist_ok=True)
        for log_file in self.work_dir.glob("*.log"):
            shutil.copy(log_file, LOGS / log_file.name)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    async def _drop_databases(self) -> None:
        conn = await asyncpg.connect(self.server_url)
        try:
            for name in self.databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
