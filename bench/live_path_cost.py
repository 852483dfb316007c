"""Focused cost of query-api's live sales path (round 3, docs/benchmarks.md): the real BatchApplier and projection
handler against a fresh database on an embedded PostgreSQL of its own (fsync on), the bench brand's reference
data, then ORDERS orders over 30 days in batches of BATCH: the consumer's time and WAL per order and line, then
(when the tree has the fold) the fold of everything queued, its time and WAL, and a national read of the
`sales_distributor_daily_now` view with the queue full and folded. For an A/B, run it with another tree's
query_api first on PYTHONPATH.

    python -m bench.live_path_cost --port 55901 --orders 20000 --batch 2000
    python -m bench.live_path_cost --port 55901 --orders 20000 --batch 200 --asynchronous-commit

`--asynchronous-commit` applies the batches as query-api's consumer does by default since round 4
(synchronous_commit off in their transactions, with the stored-offsets check), to compare with the durable commit.
"""

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import cast

import asyncpg
from aiokafka import ConsumerRecord

from bench.data import OrderFactory, accepted, brand
from query_api.main import MIGRATIONS, SCHEMA
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.settings import QueryApiSettings
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.db import create_pool, migrate

_READ = (
    "SELECT distributor_id, sum(lines), sum(value) FROM sales_distributor_daily_now "
    "WHERE day BETWEEN current_date - 40 AND current_date GROUP BY 1"
)
Fold = Callable[[asyncpg.Connection, int | None], Awaitable[int]]


def _records(events: list[Envelope], topic: str, first: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(topic, 0, first + i, 0, 0, b"k", e.model_dump_json().encode(), None, 1, 1, [])
        for i, e in enumerate(events)
    ]


async def _wal(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))


async def _read_ms(pool: asyncpg.Pool, rounds: int = 20) -> float:
    async with pool.acquire() as conn:
        await conn.fetch(_READ)
        started = time.perf_counter()
        for _ in range(rounds):
            await conn.fetch(_READ)
        return (time.perf_counter() - started) / rounds * 1000


def _fold_of_tree() -> Fold | None:
    try:
        from query_api.projections.sales_fold import fold
    except ImportError:
        return None
    return fold


async def measure(pool: asyncpg.Pool, orders: int, batch: int, asynchronous_commit: bool = False) -> str:
    masters = brand(7)
    now = datetime.now(UTC)
    handler = projection_handler(QueryApiSettings())
    applier = BatchApplier(pool=pool, group_id="live-path-cost", handler=handler, wanted_types=PROJECTION_TYPES)
    if asynchronous_commit:
        applier = BatchApplier(
            pool=pool,
            group_id="live-path-cost",
            handler=handler,
            wanted_types=PROJECTION_TYPES,
            synchronous_commit=False,
        )
    await applier.apply_batch(_records([accepted(e, now) for e in masters.reference], "sellthrough.reference.v1", 0))
    factory = OrderFactory(masters, random.Random(7))
    events = [accepted(factory.past_order(date.today(), 30, 2), now) for _ in range(orders)]
    lines = sum(len(cast(OrderCaptured, e).payload.lines) for e in events)
    wal_start = await _wal(pool)
    started = time.perf_counter()
    # As the consumer checks them with asynchronous commit: the next offset stored, per partition.
    stored: dict[tuple[str, int], int | None] | None = (
        {("sellthrough.trade.v1", 0): None} if asynchronous_commit else None
    )
    for i in range(0, orders, batch):
        records = _records(events[i : i + batch], "sellthrough.trade.v1", 10 + i)
        await applier.apply_decoded(applier.decode(records), expected_offsets=stored)
        if stored is not None:
            stored[("sellthrough.trade.v1", 0)] = records[-1].offset + 1
    apply_s = time.perf_counter() - started
    wal_applied = await _wal(pool)
    report = (
        f"{orders} orders, {lines} lines, batches of {batch}: consumer {apply_s:.2f} s "
        f"({apply_s / orders * 1e6:.0f} us/order), WAL {(wal_applied - wal_start) / lines:.0f} B/line"
    )
    fold = _fold_of_tree()
    if fold is not None:
        queued_ms = await _read_ms(pool)
        started = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            folded = await fold(conn, None)
        fold_s = time.perf_counter() - started
        report += (
            f"; fold {fold_s:.2f} s ({fold_s / lines * 1e6:.1f} us/line, {folded} rows), WAL "
            f"{(await _wal(pool) - wal_applied) / lines:.0f} B/line; national read {queued_ms:.1f} ms queued, "
            f"{await _read_ms(pool):.1f} ms folded"
        )
    total = await pool.fetchval("SELECT sum(lines) FROM sales_distributor_daily")
    return f"{report}; rollup lines {total} (sent {lines})"


async def main(port: int, orders: int, batch: int, asynchronous_commit: bool) -> None:
    postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="live-path-cost-")) / "data", port)
    postgres.start()
    try:
        await migrate(postgres.url, SCHEMA, MIGRATIONS)
        pool = await create_pool(postgres.url, SCHEMA)
        try:
            print(await measure(pool, orders, batch, asynchronous_commit), flush=True)
        finally:
            await pool.close()
    finally:
        postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=55901)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--asynchronous-commit", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.orders, arguments.batch, arguments.asynchronous_commit))
