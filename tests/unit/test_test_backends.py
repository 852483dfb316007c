"""The switch between embedded and container backends for the tests' PostgreSQL and Kafka."""

from pathlib import Path

import pytest

from tests.support import backends


def test_the_embedded_backend_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.BACKEND_VARIABLE, raising=False)
    assert backends.backend() == "embedded"


def test_an_unknown_backend_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backends.BACKEND_VARIABLE, "docker")
    with pytest.raises(pytest.UsageError, match="choose one of embedded, containers"):
        backends.backend()


def test_containers_without_a_docker_engine_skip_saying_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(backends.BACKEND_VARIABLE, "containers")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    broker = backends.kafka_broker(tmp_path)
    with pytest.raises(pytest.skip.Exception, match="needs a reachable Docker engine"):
        broker.__enter__()
