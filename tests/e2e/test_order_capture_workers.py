"""order-capture as it runs by default: one instance of several worker processes sharing the port. Every
worker serves requests, relays the outbox and consumes reference data; /metrics counts for all of them
whichever answers; a crash of the instance takes its workers down with it."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from order_capture.settings import OrderCaptureSettings
from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import order, reference_events
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

WORKERS = OrderCaptureSettings.model_fields["http_workers"].default


@pytest.fixture(scope="module")
def order_capture(infra: Infra, tokens: Tokens) -> Iterator[ServiceProcess]:
    with running_services(infra, tokens, ["order-capture"]) as running:
        yield running["order-capture"]


def workers_of(service: ServiceProcess) -> list[psutil.Process]:
    """The worker processes (multiprocessing also starts a resource tracker beside them)."""
    assert service.process is not None
    children = psutil.Process(service.process.pid).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def samples(service: ServiceProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def accepted_total(service: ServiceProcess) -> float:
    return sum(
        value
        for labels, value in samples(service, "sellthrough_events_ingested_total").items()
        if ("outcome", "accepted") in labels
    )


def test_the_default_is_several_workers_and_each_one_serves(order_capture: ServiceProcess, tokens: Tokens) -> None:
    assert WORKERS >= 2
    assert len(workers_of(order_capture)) == WORKERS
    headers = tokens.header("admin")
    response = httpx.post(
        f"{order_capture.url}/v1/events", json={"events": reference_events()}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    wait_for_masters(order_capture.url, tokens.issued["admin"].token, reference_events())

    # One connection per request: the kernel spreads them over the workers listening on the shared socket.
    posted = 0
    for _ in range(40):
        response = httpx.post(
            f"{order_capture.url}/v1/events", json={"events": [order("O1", [("S1", 1)])]}, headers=headers, timeout=30
        )
        assert response.json()["accepted"] == 1, response.text
        posted += 1

    # Whichever worker answers the scrape, it reports what all of them accepted.
    expected = posted + len(reference_events())
    assert {accepted_total(order_capture) for _ in range(10)} == {expected}
    served = samples(order_capture, "sellthrough_http_requests_total")
    assert sum(v for labels, v in served.items() if ("route", "/v1/events") in labels) == posted + 1
    # Gauges are one series per label set, not one per worker process.
    backlog = samples(order_capture, "sellthrough_outbox_backlog")
    assert list(backlog) == [(("service", "order-capture"),)], backlog


def test_killing_the_instance_kills_its_workers(infra: Infra, tokens: Tokens) -> None:
    with running_services(infra, tokens, ["order-capture"]) as running:
        service = running["order-capture"]
        workers = workers_of(service)
        assert len(workers) == WORKERS
        everything = psutil.Process(service.process.pid).children(recursive=True)  # type: ignore[union-attr]
        metrics_dir = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_dir()
        headers = tokens.header("admin")
        response = httpx.post(
            f"{service.url}/v1/events", json={"events": reference_events()}, headers=headers, timeout=30
        )
        assert response.json()["accepted"] == len(reference_events()), response.text
        assert accepted_total(service) == len(reference_events())
        service.kill()
        _, alive = psutil.wait_procs(everything, timeout=10)
        assert not alive, f"processes outlived their instance: {alive}"
        # A restart on the same port counts from zero, as any new process does, not from the killed run's files.
        service.start()
        assert accepted_total(service) == 0
        service.stop()
        assert not metrics_dir.exists()
