"""Readiness with the broker down: order-capture keeps accepting (its outbox holds events) and query-api keeps
answering reads (they need only PostgreSQL), while stock-ledger, whose work is consuming, is not ready."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from order_capture.main import create_app as order_capture_app
from order_capture.settings import OrderCaptureSettings
from query_api.main import create_app as query_api_app
from query_api.settings import QueryApiSettings
from sellthrough_devstack.processes import free_port
from stock_ledger.main import create_app as stock_ledger_app
from stock_ledger.settings import StockLedgerSettings
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import reference_events


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client,
    ):
        yield client


async def test_with_kafka_down_order_capture_and_query_api_stay_ready_while_stock_ledger_is_not(
    infra: Infra, tokens: Tokens
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there: the broker is down
    common: dict[str, Any] = {
        "database_url": infra.database_url,
        "kafka_bootstrap_servers": nowhere,
        "tokens_file": tokens.file,
    }
    async with serving(order_capture_app(OrderCaptureSettings(**common))) as order_capture:
        ready = await order_capture.get("/readyz")
        accepted = await post_events(order_capture, tokens.header("admin"), reference_events()[:2])
    async with serving(query_api_app(QueryApiSettings(**common))) as query_api:
        query_ready = await query_api.get("/readyz")
        read = await query_api.get(
            "/v1/sales",
            params={"level": "zone", "from": "2026-01-01", "to": "2026-01-31"},
            headers=tokens.header("analyst"),
        )
    async with serving(stock_ledger_app(StockLedgerSettings(**common))) as stock_ledger:
        not_ready = await stock_ledger.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["checks"] == {"migrations": True, "postgres": True, "kafka": False}
    assert accepted.json()["accepted"] == 2, "accepted means durable in Postgres, broker or not"
    assert query_ready.status_code == 200, query_ready.text
    assert query_ready.json()["checks"] == {"migrations": True, "postgres": True, "kafka": False}, (
        "reported, not required"
    )
    assert read.status_code == 200, read.text
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["kafka"] is False
