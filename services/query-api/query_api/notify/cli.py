"""sellthrough-notify: send now what the background job sends on schedule (same settings as the service)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import typer

from query_api.names import SCHEMA
from query_api.notify.runner import send_digest, send_review, webhooks_once
from query_api.settings import QueryApiSettings
from sellthrough_runtime.db import create_pool

app = typer.Typer(help="Alerts that reach people: webhooks, the daily digest, the Monday review pack.")


def _with_pool(work: Callable[[asyncpg.Pool, QueryApiSettings], Awaitable[str]]) -> None:
    async def main() -> str:
        settings = QueryApiSettings()
        pool = await create_pool(settings.database_url, SCHEMA, min_size=1, max_size=2)
        try:
            return await work(pool, settings)
        finally:
            await pool.close()

    typer.echo(asyncio.run(main()))


@app.command()
def deliver() -> None:
    """Queue alert changes for webhook subscriptions and send every delivery due now."""

    async def work(pool: asyncpg.Pool, settings: QueryApiSettings) -> str:
        outcome = await webhooks_once(pool, settings)
        return f"delivered {outcome.delivered}, failed {outcome.failed}"

    _with_pool(work)


@app.command()
def digest(force: bool = typer.Option(False, help="Send even if today's digest was sent.")) -> None:
    """Send today's digest to every e-mail subscription."""

    async def work(pool: asyncpg.Pool, settings: QueryApiSettings) -> str:
        return f"digest mails sent: {await send_digest(pool, settings, datetime.now(settings.zone).date(), force)}"

    _with_pool(work)


@app.command()
def review(force: bool = typer.Option(False, help="Send even if this week's pack was sent.")) -> None:
    """Send the review pack of the last whole week to every e-mail subscription, whatever the day."""

    async def work(pool: asyncpg.Pool, settings: QueryApiSettings) -> str:
        return f"review mails sent: {await send_review(pool, settings, datetime.now(settings.zone).date(), force)}"

    _with_pool(work)
