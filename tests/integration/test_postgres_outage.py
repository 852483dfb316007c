"""Postgres stopped under running services, then started again: meanwhile every request that needs it answers
503 problem+json with Retry-After (not a 500, not a hang), and afterwards the pools reconnect by themselves and
nothing accepted before the outage is lost. Its own PostgreSQL server (the session's is shared by every test);
order-capture and query-api in process."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from order_capture.main import create_app as order_capture_app
from order_capture.settings import OrderCaptureSettings
from query_api.main import create_app as query_api_app
from query_api.settings import QueryApiSettings
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.db import create_pool
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import SKUS, order, reference_events
from tests.support.private_postgres import private_postgres
from tests.support.waiting import eventually

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with private_postgres("sellthrough-outage-pg-") as server:
        yield server


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client,
    ):
        yield client


# The statements of the two requests caught by the outage, as pg_stat_activity shows them.
_CAUGHT = "query LIKE '%INSERT INTO idempotency_keys%' OR query LIKE '%FROM sales_distributor_daily%'"


@contextlib.asynccontextmanager
async def tables_locked(server: EmbeddedPostgres, *tables: str) -> AsyncIterator[Callable[[int], Awaitable[int]]]:
    """Hold an exclusive lock on `tables`; yields a wait until that many requests are blocked on it."""
    holder, monitor = await asyncpg.connect(server.url), await asyncpg.connect(server.url)

    def blocked(count: int) -> Awaitable[int]:
        return eventually(
            lambda: monitor.fetchval(
                f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ({_CAUGHT})"
            ),
            lambda waiting: waiting >= count,
            what=f"{count} requests waiting on the lock",
        )

    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            yield blocked
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        pass  # the server went away under the lock holder, as it was meant to
    finally:
        for conn in (holder, monitor):
            conn.terminate()


def value_of(*orders: dict[str, Any]) -> Decimal:
    return sum(
        (Decimal(SKUS[line["sku_id"]][1]) * line["quantity"] for o in orders for line in o["payload"]["lines"]),
        Decimal(0),
    )


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/unavailable")
    assert 1 <= int(response.headers["retry-after"]) <= 5


async def test_postgres_down_mid_traffic_is_503_with_retry_after_and_the_services_recover(
    own_postgres: EmbeddedPostgres, infra: Infra, tokens: Tokens
) -> None:
    common: dict[str, Any] = {
        "database_url": own_postgres.url,
        "kafka_bootstrap_servers": infra.kafka_bootstrap_servers,
        "tokens_file": tokens.file,
        "db_connect_timeout_s": 2,
        "db_acquire_timeout_s": 3,
    }
    before = order("O1", [("S1", 2)])
    during = order("O2", [("S3", 4)])
    async with (
        serving(order_capture_app(OrderCaptureSettings(**common))) as capture,
        serving(query_api_app(QueryApiSettings(**common))) as query,
    ):
        assert (await post_events(capture, tokens.header("admin"), reference_events())).status_code == 200
        await eventually(
            lambda: capture.get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["outlets"] == 5 and r.json()["reps"] == 3,
            what="reference data consumed by order-capture",
        )
        accepted = await post_events(capture, tokens.header("rep1"), [before])
        assert accepted.json()["accepted"] == 1, accepted.text

        await eventually(  # projected, so the read below reaches the sales table
            lambda: query.get("/v1/sales", headers=tokens.header("analyst")),
            lambda r: r.status_code == 200 and Decimal(r.json()["total"]["value"]) == value_of(before),
            timeout=30,
            what="the first order projected by query-api",
        )

        # Two requests caught mid-statement: each waits on a lock held elsewhere when the server shuts down.
        async with tables_locked(
            own_postgres, "order_capture.idempotency_keys", "query_api.sales_distributor_daily"
        ) as blocked:
            cut_off = asyncio.create_task(post_events(capture, tokens.header("rep1"), [during]))
            cut_off_read = asyncio.create_task(query.get("/v1/sales", headers=tokens.header("analyst")))
            await blocked(2)
            await asyncio.to_thread(own_postgres.stop, "fast")  # ends every session, as a restart or failover does
        # Caught mid-request: refused whole (503, to be retried) or, if it beat the shutdown, done whole;
        # never a 500. (Which one is a race inside the server's shutdown; almost always 503.)
        for caught in (await cut_off, await cut_off_read):
            if caught.status_code != 200:
                assert_unavailable(caught)

        # And requests arriving while it is down.
        started = time.monotonic()
        down_post = await post_events(capture, tokens.header("rep1"), [during])
        down_read = await query.get("/v1/sales", headers=tokens.header("analyst"))
        down_ready = await query.get("/readyz")
        assert time.monotonic() - started < 15, "requests fail fast rather than hang"

        assert_unavailable(down_post)
        assert_unavailable(down_read)
        assert down_ready.status_code == 503
        assert down_ready.json()["checks"]["postgres"] is False

        await asyncio.to_thread(own_postgres.start)  # same data directory, same port

        # The client's retry, as the phone's sync would do after Retry-After: the pools reconnect on their own.
        retried = await eventually(
            lambda: post_events(capture, tokens.header("rep1"), [during]),
            lambda r: r.status_code == 200,
            timeout=30,
            what="order-capture accepting again",
        )
        assert retried.json()["accepted"] + retried.json()["duplicate"] == 1, retried.text
        again = await post_events(capture, tokens.header("rep1"), [before])
        assert again.json()["duplicate"] == 1, "the order accepted before the outage survived it"

        sales = await eventually(
            lambda: query.get("/v1/sales", headers=tokens.header("analyst")),
            lambda r: r.status_code == 200 and Decimal(r.json()["total"]["value"]) == value_of(before, during),
            timeout=60,
            what="both orders, from before and after the outage, projected by query-api",
        )
        assert sales.json()["total"]["lines"] == 2
        assert (await query.get("/readyz")).status_code == 200


async def test_a_request_waiting_for_a_busy_pool_gives_up_after_the_acquire_timeout(infra: Infra) -> None:
    pool = await create_pool(infra.database_url, "public", min_size=1, max_size=1, acquire_timeout=0.5)
    try:
        async with pool.acquire():
            started = time.monotonic()
            with pytest.raises(TimeoutError):  # answered 503 by the problem handlers
                async with pool.acquire():
                    pass
            assert 0.4 < time.monotonic() - started < 3
    finally:
        await pool.close()
