"""Retention against real PostgreSQL: rows older than their window go, newer rows stay, rows still needed (an
outbox row not yet published) stay whatever their age, and a retry inside the window is still a duplicate."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

import order_capture
from order_capture.adapters.retention import retention_rules
from order_capture.adapters.store import store_events
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import parse_event
from sellthrough_runtime import retention_cli
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.outbox import append_to_outbox
from sellthrough_runtime.retention import Retention, outbox_rule, processed_events_rule
from tests.conftest import Infra
from tests.support.brand import order

SCHEMA = "retention_test"
ORDER_CAPTURE = "retention_order_capture"
WEEK = timedelta(days=7)


@pytest.fixture(scope="module")
async def pool(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncpg.Pool]:
    await migrate(infra.database_url, SCHEMA, tmp_path_factory.mktemp("no-service-migrations"))
    pool = await create_pool(infra.database_url, SCHEMA)
    yield pool
    await pool.close()


async def queue(pool: asyncpg.Pool, count: int, *, age: timedelta) -> list[int]:
    """`count` outbox rows created `age` ago; their seqs."""
    events = [parse_event(order("O1", [("S1", i + 1)])).stamped(datetime.now(UTC)) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await append_to_outbox(conn, events)
        rows = await conn.fetch(
            "UPDATE outbox SET created_at = now() - $1::interval WHERE event_id = ANY($2::uuid[]) RETURNING seq",
            age,
            [e.event_id for e in events],
        )
    return sorted(r["seq"] for r in rows)


async def seqs(pool: asyncpg.Pool) -> list[int]:
    return [r["seq"] for r in await pool.fetch("SELECT seq FROM outbox ORDER BY seq")]


async def test_published_outbox_rows_older_than_the_window_go_in_bounded_statements(pool: asyncpg.Pool) -> None:
    old = await queue(pool, 25, age=WEEK + timedelta(hours=1))
    young = await queue(pool, 5, age=WEEK - timedelta(hours=1))
    old_unpublished = await queue(pool, 4, age=WEEK * 2)
    await pool.execute("UPDATE outbox_progress SET published_through = $1", young[-1])

    retention = Retention(pool, "retention-test", [outbox_rule(WEEK)], batch_rows=10, max_batches=2)
    assert await retention.prune_once() == {"outbox": 20}, "two statements of ten at most in a round"
    assert await retention.prune_once() == {"outbox": 5}
    assert await retention.prune_once() == {"outbox": 0}
    assert await seqs(pool) == young + old_unpublished, "young rows, and rows not yet published, stay"
    assert not set(old) & set(await seqs(pool))


async def test_processed_event_ids_older_than_the_window_go(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO processed_events (group_id, event_id, applied_at) "
        "SELECT 'g', gen_random_uuid(), now() - make_interval(days => 9) FROM generate_series(1, 30)"
    )
    young = await pool.fetchval(
        "INSERT INTO processed_events (group_id, event_id, applied_at) "
        "VALUES ('g', gen_random_uuid(), now() - make_interval(days => 7)) RETURNING event_id"
    )
    retention = Retention(pool, "retention-test", [processed_events_rule(timedelta(days=8))], batch_rows=7)
    assert await retention.prune_once() == {"processed_events": 30}
    assert [r["event_id"] for r in await pool.fetch("SELECT event_id FROM processed_events")] == [young]


@pytest.fixture(scope="module")
async def order_capture_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    await migrate(infra.database_url, ORDER_CAPTURE, Path(order_capture.__file__).parent / "migrations")
    pool = await create_pool(infra.database_url, ORDER_CAPTURE)
    yield pool
    await pool.close()


async def test_idempotency_keys_live_until_no_retry_could_pass_and_a_retry_inside_the_window_is_a_duplicate(
    order_capture_pool: asyncpg.Pool,
) -> None:
    pool = order_capture_pool
    settings = OrderCaptureSettings()
    assert settings.idempotency_key_days == 1 + settings.occurred_at_max_age_days_connector  # the longest age
    settings = OrderCaptureSettings(idempotency_key_retention_days=30)
    recent, aged = (parse_event(order("O1", [("S1", 2)])) for _ in range(2))
    async with pool.acquire() as conn:
        outcome = await store_events(conn, [recent, aged], datetime.now(UTC))
    assert outcome.accepted == {recent.event_id, aged.event_id}
    await pool.execute(
        "UPDATE idempotency_keys SET accepted_at = now() - make_interval(days => 31) WHERE event_id = $1",
        aged.event_id,
    )
    await pool.execute(
        "UPDATE idempotency_keys SET accepted_at = now() - make_interval(days => 29) WHERE event_id = $1",
        recent.event_id,
    )

    retention = Retention(pool, "order-capture", retention_rules(settings))
    assert await retention.prune_once() == {"idempotency_keys": 1}
    kept = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM idempotency_keys")]
    assert kept == [recent.event_id]

    async with pool.acquire() as conn:
        retried = await store_events(conn, [recent, aged], datetime.now(UTC))
    assert retried.accepted == set(), "neither retry is accepted twice"
    assert recent.event_id in retried.duplicates, "inside the window: its idempotency key"
    assert aged.event_id in retried.duplicates, "past it: an order is still caught by its business key"


async def test_sizes_reports_each_table_and_its_bytes_per_row(infra: Infra, order_capture_pool: asyncpg.Pool) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        retention_cli.app,
        ["sizes", "--schema", ORDER_CAPTURE, "--exact"],
        env={"DATABASE_URL": infra.database_url},
    )
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    rows = {name: (count, per_row) for name, count, _, per_row in cells if name != "table"}
    assert {"outbox", "idempotency_keys", "processed_events", "business_keys"} <= rows.keys()
    assert "order_owners" not in rows, "an order's rep is kept on its business key (migration 0008)"
    keys = await order_capture_pool.fetchval("SELECT count(*) FROM idempotency_keys")
    size = await order_capture_pool.fetchval("SELECT pg_total_relation_size('idempotency_keys')")
    assert rows["idempotency_keys"] == (f"{keys:,}", f"{size / keys:,.0f}" if keys else "-")
