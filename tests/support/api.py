"""A blocking client for e2e tests that post as admin to order-capture and read query-api as an analyst."""

import time
from collections.abc import Callable
from typing import Any

import httpx

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Tokens
from tests.support.waiting import PIPELINE_WAIT_SECONDS


class Api:
    def __init__(self, services: dict[str, ServiceProcess], tokens: Tokens) -> None:
        self.capture = httpx.Client(base_url=services["order-capture"].url, headers=tokens.header("admin"), timeout=30)
        self.query = httpx.Client(base_url=services["query-api"].url, headers=tokens.header("analyst"), timeout=10)

    def post(self, events: list[dict[str, Any]]) -> None:
        response = self.capture.post("/v1/events", json={"events": events})
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.json()

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = self.query.get(path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, ready: Callable[[], bool], what: str, timeout: float = PIPELINE_WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline, f"{what} did not reach query-api in time"
            time.sleep(0.2)
