"""Watching query-api's sales projection from the database: how far its consumer has applied a topic."""

import asyncio
import time
from datetime import date

import asyncpg
from rich.progress import Progress

from query_api.main import PROJECTION_GROUP
from query_api.reads.sales import DrillQuery, Level, drill

_APPLIED = """
SELECT coalesce(sum(next_offset), 0) FROM query_api.consumer_offsets WHERE group_id = $1 AND topic = $2
"""


async def applied(conn: asyncpg.Connection, topic: str) -> int:
    """Records of `topic` the projection has applied (the next offsets it stored, over all partitions)."""
    try:
        return int(await conn.fetchval(_APPLIED, PROJECTION_GROUP, topic))
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return 0  # query-api has not created its tables yet


async def sales_lines(conn: asyncpg.Connection) -> int:
    """Order lines in the projection: the national total over all time, read by query-api's own drill-down
    (query_api.reads.sales), so the count follows whatever tables it reads."""
    query = DrillQuery(Level.NATIONAL, None, date(2000, 1, 1), date(2100, 1, 1))
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path TO query_api")
        result = await drill(conn, query)
    return int(result.total["lines"])


async def wait_until_applied(
    database_url: str, topic: str, target: int, label: str, *, timeout: float, interval: float = 0.05
) -> float:
    """Poll until `target` records of `topic` are applied; returns the time.perf_counter() it was seen.
    Shows a progress bar; raises TimeoutError with how far it got."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.perf_counter() + timeout
        with Progress() as progress:
            task = progress.add_task(label, total=target)
            while True:
                done = await applied(conn, topic)
                now = time.perf_counter()
                progress.update(task, completed=done)
                if done >= target:
                    return now
                if now > deadline:
                    raise TimeoutError(f"{label}: {done} of {target} records applied after {timeout:.0f}s")
                await asyncio.sleep(interval)
    finally:
        await conn.close()
