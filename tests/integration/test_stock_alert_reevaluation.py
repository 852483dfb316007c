"""Stock alerts as days pass: a position no event touches is evaluated again as the demand window slides."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

import stock_ledger
from sellthrough_contracts import parse_event
from stock_ledger.handler import LOCK_FOR_EVALUATION, ledger_handler
from stock_ledger.main import SCHEMA
from stock_ledger.reevaluation import reevaluate_alerts
from stock_ledger.settings import StockLedgerSettings
from tests.conftest import Infra
from tests.support.brand import event
from tests.support.replay import pool_on_own_loop

MIGRATIONS = Path(stock_ledger.__file__).parent / "migrations"
SETTINGS = StockLedgerSettings(demand_window_days=28, min_cover_days=7, max_cover_days=45)


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    with pool_on_own_loop(infra.database_url, SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


def trade(event_type: str, distributor: str, days_ago: float, payload: dict[str, Any]) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return event(event_type, {**payload, "distributor_id": distributor}, actor="erp-1", occurred_at=at)


async def apply(pool: asyncpg.Pool, events: list[dict[str, Any]]) -> None:
    handler = ledger_handler(SETTINGS)
    async with pool.acquire() as conn, conn.transaction():
        await handler(conn, [parse_event(e).stamped(datetime.now(UTC)) for e in events])


async def alert_events(pool: asyncpg.Pool, distributor: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'StockAlertRaised' AND partition_key = $1 ORDER BY seq",
        distributor,
    )
    return [orjson.loads(r["value"])["payload"] for r in rows]


def test_a_distributor_whose_sales_stop_is_flagged_overstocked_once_its_demand_leaves_the_window(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"
    history = [
        trade("PrimaryInvoiced", distributor, 10, {
            "invoice_number": f"INV-{distributor}",
            "invoice_date": (datetime.now(UTC) - timedelta(days=10)).date().isoformat(),
            "lines": [{"sku_id": "S1", "quantity": 40, "unit_price": "2.50"}],
        }),
        trade("OrderCaptured", distributor, 5, {
            "order_id": f"ORD-{distributor}",
            "outlet_id": "O1",
            "rep_id": "REP-1",
            "lines": [{"sku_id": "S1", "quantity": 30, "unit_price": "2.50"}],
        }),
    ]  # fmt: skip
    loop.run_until_complete(apply(pool, history))
    # 10 on hand, 30 sold in 28 days: 9.3 days of cover, inside the norms (7-45): no alert.
    assert loop.run_until_complete(alert_events(pool, distributor)) == []

    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS))
    assert loop.run_until_complete(alert_events(pool, distributor)) == []  # nothing changed today

    in_30_days = datetime.now(UTC) + timedelta(days=30)  # the order has left the 28-day window
    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS, as_of=in_30_days, chunk_size=2))
    raised = loop.run_until_complete(alert_events(pool, distributor))
    assert [(a["kind"], a["status"], a["on_hand"], a["days_of_cover"]) for a in raised] == [
        ("overstock", "raised", 10, None)
    ]
    active = loop.run_until_complete(
        pool.fetch("SELECT kind FROM alerts WHERE distributor_id = $1 AND active", distributor)
    )
    assert [r["kind"] for r in active] == ["overstock"]

    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS, as_of=in_30_days))
    assert len(loop.run_until_complete(alert_events(pool, distributor))) == 1  # evaluated again: no new change


def test_the_reevaluation_waits_for_a_ledger_transaction_that_is_evaluating(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    """Both read an alert's state and emit its change: they must not do it at the same time."""
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"
    invoice = {
        "invoice_number": f"INV-{distributor}",
        "invoice_date": datetime.now(UTC).date().isoformat(),
        "lines": [{"sku_id": "S1", "quantity": 5, "unit_price": "2.50"}],
    }
    loop.run_until_complete(apply(pool, [trade("PrimaryInvoiced", distributor, 1, invoice)]))  # a position to evaluate

    async def scenario() -> bool:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(LOCK_FOR_EVALUATION)
            reevaluating = asyncio.create_task(reevaluate_alerts(pool, SETTINGS))
            await asyncio.sleep(1.0)
            waited = not reevaluating.done()
        await asyncio.wait_for(reevaluating, 30)
        return waited

    assert loop.run_until_complete(scenario())
