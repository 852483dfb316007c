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
from stock_ledger.adapters.store import LOCK_FOR_EVALUATION
from stock_ledger.handlers.ledger import ledger_handler
from stock_ledger.handlers.reevaluation import reevaluate_alerts
from stock_ledger.main import SCHEMA
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
            "lines": [{"sku_id": "S1", "quantity": 400, "unit_price": "2.50"}],
        }),
        trade("OrderCaptured", distributor, 5, {
            "order_id": f"ORD-{distributor}",
            "outlet_id": "O1",
            "rep_id": "REP-1",
            "lines": [{"sku_id": "S1", "quantity": 300, "unit_price": "2.50"}],
        }),
    ]  # fmt: skip
    loop.run_until_complete(apply(pool, history))
    # 100 on hand, 300 sold in 28 days: 9.3 days of cover, inside the norms (7-45): no alert.
    assert loop.run_until_complete(alert_events(pool, distributor)) == []

    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS))
    assert loop.run_until_complete(alert_events(pool, distributor)) == []  # nothing changed today

    in_30_days = datetime.now(UTC) + timedelta(days=30)  # the order has left the 28-day window
    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS, as_of=in_30_days, chunk_size=2))
    raised = loop.run_until_complete(alert_events(pool, distributor))
    assert [(a["kind"], a["status"], a["on_hand"], a["days_of_cover"]) for a in raised] == [
        ("overstock", "raised", 100, None)
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


def invoiced(distributor: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    return trade("PrimaryInvoiced", distributor, 3, {
        "invoice_number": f"INV-{uuid.uuid4().hex[:12]}",
        "invoice_date": (datetime.now(UTC) - timedelta(days=3)).date().isoformat(),
        "lines": [{"sku_id": sku, "quantity": quantity, "unit_price": "2.50"} for sku, quantity in lines],
    })  # fmt: skip


def sku_registered(sku: str, **norms: int) -> dict[str, Any]:
    payload = {"sku_id": sku, "name": sku, "brand": "B", "category": "C", "list_price": "2.50", **norms}
    return event("SkuRegistered", payload)


async def raised_alerts(pool: asyncpg.Pool, distributor: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The alerts a distributor has raised now, by (SKU, kind), as the newest event of each said."""
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'StockAlertRaised' AND partition_key = $1 ORDER BY seq",
        distributor,
    )
    newest = {}
    for row in rows:
        alert = orjson.loads(row["value"])["payload"]
        newest[(alert["sku_id"], alert["kind"])] = alert
    return {key: alert for key, alert in newest.items() if alert["status"] == "raised"}


def test_a_few_units_that_do_not_move_are_not_overstock_but_a_pile_of_them_is(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"
    # No demand at all: days of cover are endless, yet 2 units (at most the default 12) are no overstock.
    loop.run_until_complete(apply(pool, [invoiced(distributor, [("S1", 2), ("S2", 12)])]))
    assert loop.run_until_complete(raised_alerts(pool, distributor)) == {}

    loop.run_until_complete(apply(pool, [invoiced(distributor, [("S1", 11)])]))  # 13 on hand
    raised = loop.run_until_complete(raised_alerts(pool, distributor))
    assert set(raised) == {("S1", "overstock")}
    assert (raised[("S1", "overstock")]["on_hand"], raised[("S1", "overstock")]["days_of_cover"]) == (13, None)


def test_a_sku_sets_its_own_overstock_floor_and_one_without_it_keeps_the_setting(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"
    big, plain = f"S-BIG-{distributor}", f"S-PLAIN-{distributor}"
    v1 = sku_registered(plain) | {"schema_version": 1}  # an older writer: no floor, upcast to none
    loop.run_until_complete(apply(pool, [sku_registered(big, overstock_min_units=500), v1]))
    loop.run_until_complete(apply(pool, [invoiced(distributor, [(big, 400), (plain, 400)])]))
    assert set(loop.run_until_complete(raised_alerts(pool, distributor))) == {(plain, "overstock")}

    loop.run_until_complete(apply(pool, [invoiced(distributor, [(big, 101)])]))  # 501 on hand
    assert set(loop.run_until_complete(raised_alerts(pool, distributor))) == {
        (plain, "overstock"),
        (big, "overstock"),
    }


def test_negative_book_stock_is_its_own_alert_without_days_of_cover_and_nothing_else(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"
    sold_without_stock = trade("OrderCaptured", distributor, 2, {
        "order_id": f"ORD-{distributor}",
        "outlet_id": "O1",
        "rep_id": "REP-1",
        "lines": [{"sku_id": "S1", "quantity": 30, "unit_price": "2.50"}],
    })  # fmt: skip
    loop.run_until_complete(apply(pool, [sold_without_stock]))

    raised = loop.run_until_complete(raised_alerts(pool, distributor))
    assert set(raised) == {("S1", "negative_stock")}
    negative = raised[("S1", "negative_stock")]
    assert (negative["on_hand"], negative["days_of_cover"], negative["threshold_days"]) == (-30, None, None)
    assert negative["avg_daily_sales"] == round(30 / 28, 4)

    in_30_days = datetime.now(UTC) + timedelta(days=30)  # no demand left: still negative, still nothing else
    loop.run_until_complete(reevaluate_alerts(pool, SETTINGS, as_of=in_30_days))
    assert set(loop.run_until_complete(raised_alerts(pool, distributor))) == {("S1", "negative_stock")}
