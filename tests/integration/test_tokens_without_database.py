"""The token store's database stopped under a running service: tokens the process has already seen keep working
with what it last read, and so do the file's; a token it has not seen gets a retryable 503, not a 401 that would
log a device out; once Postgres is back, that token works. Its own PostgreSQL server (the session's is shared)."""

import asyncio
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from order_capture.main import create_app
from order_capture.settings import OrderCaptureSettings
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.auth import Role
from sellthrough_runtime.token_store import TokenScope, issue_token, migrate_auth
from tests.conftest import Infra, Tokens
from tests.support.private_postgres import private_postgres


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with private_postgres("sellthrough-tokens-pg-") as server:
        yield server


async def issued(database_url: str, subject: str) -> str:
    await migrate_auth(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        return (await issue_token(conn, TokenScope(Role.ANALYST, subject))).token
    finally:
        await conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_seen_tokens_work_through_an_outage_and_unseen_ones_get_503(
    own_postgres: EmbeddedPostgres, infra: Infra, tokens: Tokens
) -> None:
    seen, unseen = await issued(own_postgres.url, "seen"), await issued(own_postgres.url, "unseen")
    settings = OrderCaptureSettings(
        database_url=own_postgres.url,
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        tokens_file=tokens.file,
        token_refresh_seconds=0.2,
        db_connect_timeout_s=1,
        db_acquire_timeout_s=1,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client,
    ):
        assert (await client.get("/v1/whoami", headers=bearer(seen))).json()["subject"] == "seen"
        await asyncio.to_thread(own_postgres.stop, "fast")
        try:
            await asyncio.sleep(1)  # several refreshes fail meanwhile
            assert (await client.get("/v1/whoami", headers=bearer(seen))).status_code == 200
            assert (await client.get("/v1/whoami", headers=tokens.header("analyst"))).status_code == 200
            down = await client.get("/v1/whoami", headers=bearer(unseen))
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"]
        finally:
            await asyncio.to_thread(own_postgres.start)
        back = await client.get("/v1/whoami", headers=bearer(unseen))
        assert back.status_code == 200, back.text
        assert back.json()["subject"] == "unseen"
