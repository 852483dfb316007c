"""Work per order of query-api's live sales path with its fold (round 5, docs/benchmarks.md): the real BatchApplier
and projection handler against a fresh embedded PostgreSQL of its own, the bench brand's reference data, ORDERS
orders over 30 days in batches of BATCH, each batch followed by a fold of everything queued (as the fold job's
0.2 s would land at ~5,000 events/s) and, every RUNNING_EVERY batches, the move of the running totals' queue where
the tree has one (its job's 2 s). Reported: CPU (this process and every PostgreSQL process, from /proc) and WAL per
order and line of the consumer's transactions and of the folds, and the rows each sales table took. For an A/B,
run it with another tree's query_api first on PYTHONPATH (a tree without the running queue folds it every time).

    python -m bench.fold_cost --orders 20000 --batch 1000
    python -m bench.fold_cost --days 0    # every order of today: the live case
"""

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import cast

import asyncpg
import psutil

from bench.data import OrderFactory, accepted, brand
from bench.live_path_cost import _records, _wal
from query_api.main import MIGRATIONS, SCHEMA
from query_api.projections import sales_fold
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.settings import QueryApiSettings
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.db import create_pool, migrate

_TOPIC = "sellthrough.trade.v1"
_ROWS = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
WHERE relname LIKE 'sales_%' AND n_tup_ins + n_tup_upd > 0 ORDER BY 1
"""


def _cpu(postgres: EmbeddedPostgres) -> float:
    """CPU seconds (user + system) so far of this process and of every process of the server."""
    postmaster = psutil.Process(int((postgres.data_dir / "postmaster.pid").read_text().split()[0]))
    seconds = 0.0
    for process in [psutil.Process(os.getpid()), postmaster, *postmaster.children()]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            seconds += times.user + times.system
    return seconds


async def _fold(pool: asyncpg.Pool, running: bool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        try:
            await sales_fold.fold(conn, None, running=running)  # type: ignore[call-arg, unused-ignore]
        except TypeError:  # a tree before round 5: every fold keeps the running totals
            await sales_fold.fold(conn, None)


async def measure(
    postgres: EmbeddedPostgres, pool: asyncpg.Pool, orders: int, batch: int, running_every: int, days: int = 30
) -> str:
    masters = brand(7)
    now = datetime.now(UTC)
    applier = BatchApplier(
        pool=pool,
        group_id="fold-cost",
        handler=projection_handler(QueryApiSettings()),
        wanted_types=PROJECTION_TYPES,
        synchronous_commit=False,
    )
    await applier.apply_batch(_records([accepted(e, now) for e in masters.reference], "sellthrough.reference.v1", 0))
    factory = OrderFactory(masters, random.Random(7))
    events = [accepted(factory.past_order(date.today(), days, min(days, 2)), now) for _ in range(orders)]
    lines = sum(len(cast(OrderCaptured, e).payload.lines) for e in events)
    stored: dict[tuple[str, int], int | None] = {(_TOPIC, 0): None}
    apply_cpu = fold_cpu = 0.0
    apply_wal = fold_wal = 0
    started = time.perf_counter()
    for number, first in enumerate(range(0, orders, batch)):
        records = _records(events[first : first + batch], _TOPIC, 10 + first)
        cpu, wal = _cpu(postgres), await _wal(pool)
        await applier.apply_decoded(applier.decode(records), expected_offsets=stored)
        stored[(_TOPIC, 0)] = records[-1].offset + 1
        applied_cpu, applied_wal = _cpu(postgres), await _wal(pool)
        last = first + batch >= orders
        await _fold(pool, running=last or number % running_every == running_every - 1)
        apply_cpu += applied_cpu - cpu
        apply_wal += applied_wal - wal
        fold_cpu += _cpu(postgres) - applied_cpu
        fold_wal += await _wal(pool) - applied_wal
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.6)  # the statistics collector's counts of the last transactions
    rows = "; ".join(
        f"{r['relname']} +{r['n_tup_ins']} ~{r['n_tup_upd']} ({r['n_tup_hot_upd']} HOT)"
        for r in await pool.fetch(_ROWS)
    )
    total = await pool.fetchval("SELECT sum(lines) FROM sales_distributor_daily")
    return (
        f"{orders} orders, {lines} lines, batches of {batch}, {seconds:.1f} s: consumer CPU "
        f"{apply_cpu / orders * 1e6:.0f} us/order, WAL {apply_wal / lines:.0f} B/line; fold CPU "
        f"{fold_cpu / lines * 1e6:.0f} us/line ({fold_cpu / orders * 1e6:.0f} us/order), WAL {fold_wal / lines:.0f} "
        f"B/line; both {(apply_cpu + fold_cpu) / orders * 1e6:.0f} us/order; rollup lines {total} (sent {lines})\n"
        f"rows: {rows}"
    )


def _directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="fold-cost-"))
    directory.chmod(0o755)  # as root the server runs as another user, who must reach its data directory
    return directory


async def main(port: int, orders: int, batch: int, running_every: int, days: int) -> None:
    postgres = EmbeddedPostgres(_directory() / "data", port)
    postgres.start()
    try:
        await migrate(postgres.url, SCHEMA, MIGRATIONS)
        pool = await create_pool(postgres.url, SCHEMA)
        try:
            print(await measure(postgres, pool, orders, batch, running_every, days), flush=True)
        finally:
            await pool.close()
    finally:
        postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=55902)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--running-every", type=int, default=10)
    # Orders on a random day from DAYS ago to 2 days ago (0: all today, the live case where a pair's rows of the day
    # are rewritten by each move rather than inserted).
    parser.add_argument("--days", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.orders, arguments.batch, arguments.running_every, arguments.days))
