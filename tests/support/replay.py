"""Driving a service's real batch applier from a synchronous (hypothesis) test: a migrated pool on an event
loop of its own, and events as the Kafka records the consumer would hand over."""

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka.structs import ConsumerRecord

from sellthrough_runtime.db import create_pool, migrate


@contextlib.contextmanager
def pool_on_own_loop(
    database_url: str, schema: str, migrations: Path
) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(migrate(database_url, schema, migrations))
    pool = loop.run_until_complete(create_pool(database_url, schema))
    try:
        yield loop, pool
    finally:
        loop.run_until_complete(pool.close())
        loop.close()


def as_records(events: list[dict[str, Any]], first_offset: int) -> list[ConsumerRecord[bytes, bytes]]:
    """The events as consecutive records of partition 0 of the trade topic, from `first_offset`."""
    return [
        ConsumerRecord("sellthrough.trade.v1", 0, first_offset + i, 0, 0, b"k", orjson.dumps(e), None, 1, 1, [])
        for i, e in enumerate(events)
    ]
