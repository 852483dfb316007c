"""The alert diff into the delivery outbox against real Postgres, in a schema of its own: idempotent however often
and however concurrently it polls, scoped per subscription, cleared alerts only where their raise went; and what
one poll costs over many alerts."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from query_api.names import MIGRATIONS
from query_api.notify.detect import DiffMemo, diff_alerts
from query_api.notify.subscriptions import Subscription, insert
from sellthrough_runtime.auth import Role
from sellthrough_runtime.db import create_pool, migrate
from tests.conftest import Infra

SCHEMA = "query_api_notify_test"
DISTRIBUTORS = 50
SKUS = 100  # 5,000 alerts


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    await admin.close()
    await migrate(infra.database_url, SCHEMA, MIGRATIONS)
    created = await create_pool(infra.database_url, SCHEMA)
    now = datetime.now(UTC)
    await created.execute("INSERT INTO zones VALUES ('Z1', 'North', $1)", now)
    await created.executemany(
        "INSERT INTO regions (region_id, zone_id, name, occurred_at) VALUES ($1, 'Z1', $1, $2)",
        [("R1", now), ("R2", now)],
    )
    await created.executemany(
        "INSERT INTO distributors (distributor_id, name, region_id, occurred_at) VALUES ($1, $1, $2, $3)",
        [(f"D{d}", "R1" if d % 2 else "R2", now) for d in range(DISTRIBUTORS)],
    )
    await created.executemany(
        "INSERT INTO stock_alerts (distributor_id, sku_id, kind, status, on_hand, avg_daily_sales, days_of_cover, "
        "threshold_days, changed_at, version) VALUES ($1, $2, $3, 'raised', 100, 1.0, 100.0, 45.0, $4, 1)",
        [
            (f"D{d}", f"S{s}", "overstock" if s % 2 else "stockout_risk", now)
            for d in range(DISTRIBUTORS)
            for s in range(SKUS)
        ],
    )
    try:
        yield created
    finally:
        await created.close()


async def subscribe(pool: asyncpg.Pool, role: Role, regions: tuple[str, ...] = (), kinds: tuple[str, ...] = ()) -> str:
    sub_id = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await insert(
            conn,
            Subscription(
                sub_id,
                role,
                regions,
                (),
                kinds or ("overstock", "stockout_risk", "negative_stock"),
                f"http://127.0.0.1:9/{sub_id}",
                None,
                "whsec_test",
                datetime.now(UTC),
            ),
        )
    return sub_id


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT subscription_id, count(*) AS n FROM notify_deliveries GROUP BY 1")
    return {r["subscription_id"]: r["n"] for r in rows}


async def test_polls_are_idempotent_scoped_and_concurrent_polls_never_duplicate(pool: asyncpg.Pool) -> None:
    national = await subscribe(pool, Role.ADMIN)
    region = await subscribe(pool, Role.REGIONAL_MANAGER, ("R1",), ("overstock",))
    total = DISTRIBUTORS * SKUS

    started = time.perf_counter()
    first = await diff_alerts(pool)
    first_s = time.perf_counter() - started
    assert first == total + total // 4, "every alert nationally; R1's half of the distributors, overstock only"
    assert await counts(pool) == {national: total, region: total // 4}

    started = time.perf_counter()
    again = await asyncio.gather(*(diff_alerts(pool) for _ in range(3)))
    steady_s = (time.perf_counter() - started) / 3
    assert again == [0, 0, 0], "polling again, even three at once, queues nothing new"
    print(f"diff of {total} alerts x 2 subscriptions: first poll {first_s:.3f}s, a steady poll {steady_s:.3f}s")

    memo = DiffMemo()
    assert await diff_alerts(pool, memo) == 0
    started = time.perf_counter()
    assert await diff_alerts(pool, memo) == 0
    memo_s = time.perf_counter() - started
    print(f"a steady poll with the memo (nothing changed): {memo_s * 1000:.1f} ms")

    # D1 is in R1: its S1 overstock is cleared (version 2): both get the clear, as both got the raise.
    await pool.execute(
        "UPDATE stock_alerts SET status = 'cleared', version = 2 WHERE distributor_id = 'D1' AND sku_id = 'S1'"
    )
    # A new subscription after the clear gets the raised alerts only, never that history.
    late = await subscribe(pool, Role.ADMIN)
    assert await diff_alerts(pool, memo) == 2 + total - 1, "the memo sees the change and the new subscription"
    assert await counts(pool) == {national: total + 1, region: total // 4 + 1, late: total - 1}
    bodies = await pool.fetch(
        "SELECT body::json->>'type' AS type FROM notify_deliveries WHERE idempotency_key = 'stock|overstock|D1|S1|v2'"
    )
    assert [b["type"] for b in bodies] == ["stock_alert.cleared", "stock_alert.cleared"]
