"""The ledger tie-out as a metric: a position whose book (rebuilt by query-api) differs from the stock ledger's
on-hand is counted once the difference holds at two checks in a row, and not while one side is catching up."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

import query_api
from query_api.jobs.reconciliation_check import check_once
from query_api.main import SCHEMA
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.metrics import RECONCILIATION_DIFFERENCE_UNITS, RECONCILIATION_POSITIONS_DIFFERING
from tests.conftest import Infra

MIGRATIONS = Path(query_api.__file__).parent / "migrations"
AT = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    await migrate(infra.database_url, SCHEMA, MIGRATIONS)
    pool = await create_pool(infra.database_url, SCHEMA)
    await pool.execute("TRUNCATE reconciliation_movements, reconciliation_counts, stock_positions")
    yield pool
    await pool.close()


async def invoice(pool: asyncpg.Pool, sku: str, units: int) -> None:
    await pool.execute(
        "INSERT INTO reconciliation_movements VALUES ($1, $2, 'D1', $3, 'primary', $4)", uuid.uuid4(), sku, AT, units
    )


async def ledger(pool: asyncpg.Pool, sku: str, on_hand: int, version: int) -> None:
    await pool.execute(
        "INSERT INTO stock_positions VALUES ('D1', $1, $2, 0, $3, $4) ON CONFLICT (distributor_id, sku_id) "
        "DO UPDATE SET on_hand = excluded.on_hand, version = excluded.version",
        sku,
        on_hand,
        AT,
        version,
    )


async def test_a_difference_counts_once_it_holds_at_two_checks(pool: asyncpg.Pool) -> None:
    await invoice(pool, "S1", 40)
    await ledger(pool, "S1", 40, 1)  # agrees
    await invoice(pool, "S2", 30)
    await ledger(pool, "S2", 25, 1)  # five units short in the ledger

    seen, stable = await check_once(pool, {})
    assert stable == []  # seen once: perhaps a side catching up
    assert RECONCILIATION_POSITIONS_DIFFERING._value.get() == 0

    seen, stable = await check_once(pool, seen)
    assert [(p.sku_id, p.ledger_difference) for p in stable] == [("S2", 5)]
    assert RECONCILIATION_POSITIONS_DIFFERING._value.get() == 1
    assert RECONCILIATION_DIFFERENCE_UNITS._value.get() == 5

    # The ledger applies the missing movement: the difference is gone at the next check.
    await ledger(pool, "S2", 30, 2)
    seen, stable = await check_once(pool, seen)
    assert (stable, seen) == ([], {})
    assert RECONCILIATION_POSITIONS_DIFFERING._value.get() == 0


async def test_a_side_that_moved_between_checks_is_not_yet_a_difference(pool: asyncpg.Pool) -> None:
    await invoice(pool, "S3", 10)
    await ledger(pool, "S3", 0, 1)
    seen, _ = await check_once(pool, {})
    await ledger(pool, "S3", 4, 2)  # the ledger is still applying the invoice's lines
    seen, stable = await check_once(pool, seen)
    assert stable == []
    seen, stable = await check_once(pool, seen)
    assert [(p.sku_id, p.ledger_difference) for p in stable] == [("S3", 6)]
