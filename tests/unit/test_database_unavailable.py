"""A request that fails because the database cannot be used answers 503 with Retry-After, never a bare 500.
(For real, with Postgres stopped and restarted: tests/integration/test_postgres_outage.py.)"""

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from sellthrough_runtime.problems import install_problem_handlers


def app_raising(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def get_boom(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),  # a pool acquire or a connect that timed out
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_database_outages_are_503_problems_with_retry_after(error: BaseException) -> None:
    response = await get_boom(app_raising(error))

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json()["type"].endswith("/unavailable")


async def test_other_failures_stay_500() -> None:
    response = await get_boom(app_raising(RuntimeError("a bug")))

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in response.headers
