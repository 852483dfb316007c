"""stock-ledger's handler decisions against an in-memory LedgerStore: which positions, alerts and variances it
emits and with which version. The SQL of the ledger keeps its PostgreSQL tests (tests/integration)."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sellthrough_contracts import Envelope, parse_event
from sellthrough_contracts.stock import StockAlertRaised, StockPositionChanged, StockVarianceRecorded
from stock_ledger.handlers.ledger import apply_batch
from stock_ledger.settings import StockLedgerSettings
from tests.support.brand import event
from tests.support.fakes.stock_ledger import FakeLedgerStore

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SETTINGS = StockLedgerSettings(demand_window_days=28, min_cover_days=7, max_cover_days=45, overstock_min_units=12)


def trade(event_type: str, days_ago: float, payload: dict[str, Any]) -> dict[str, Any]:
    return event(
        event_type, {"distributor_id": "D1", **payload}, actor="erp-1", occurred_at=NOW - timedelta(days=days_ago)
    )


def invoiced(days_ago: float, lines: list[tuple[str, int]]) -> dict[str, Any]:
    return trade("PrimaryInvoiced", days_ago, {
        "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
        "invoice_date": (NOW - timedelta(days=days_ago)).date().isoformat(),
        "lines": [{"sku_id": sku, "quantity": q, "unit_price": "2.50"} for sku, q in lines],
    })  # fmt: skip


def ordered(days_ago: float, order_id: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    return trade("OrderCaptured", days_ago, {
        "order_id": order_id,
        "outlet_id": "O1",
        "rep_id": "REP-1",
        "lines": [{"sku_id": sku, "quantity": q, "unit_price": "2.50"} for sku, q in lines],
    })  # fmt: skip


def cancelled(days_ago: float, order_id: str) -> dict[str, Any]:
    return trade("OrderCancelled", days_ago, {"order_id": order_id, "outlet_id": "O1", "reason": "refused"})


def counted(days_ago: float, lines: list[tuple[str, int]]) -> dict[str, Any]:
    at = NOW - timedelta(days=days_ago)
    return trade("StockCounted", days_ago, {
        "count_id": f"CNT-{uuid.uuid4().hex[:8]}",
        "counted_at": at.isoformat(),
        "lines": [{"sku_id": sku, "quantity": q} for sku, q in lines],
    })  # fmt: skip


def sku(sku_id: str, price: str = "2.50", **norms: int) -> dict[str, Any]:
    payload = {"sku_id": sku_id, "name": sku_id, "brand": "B", "category": "C", "list_price": price, **norms}
    return event("SkuRegistered", payload, occurred_at=NOW - timedelta(days=60))


def apply(store: FakeLedgerStore, *documents: dict[str, Any]) -> list[Envelope]:
    """Applies one batch; returns what it queued in the outbox."""
    before = len(store.outbox)
    events = [parse_event(d).stamped(NOW) for d in documents]
    asyncio.run(apply_batch(store, events, SETTINGS, NOW))
    return store.outbox[before:]


def positions(emitted: list[Envelope]) -> list[tuple[str, int, int]]:
    return [
        (e.payload.sku_id, e.payload.on_hand, e.payload.version) for e in emitted if isinstance(e, StockPositionChanged)
    ]


def alerts(emitted: list[Envelope]) -> list[tuple[str, str, str, int]]:
    return [
        (e.payload.sku_id, e.payload.kind, e.payload.status, e.payload.version)
        for e in emitted
        if isinstance(e, StockAlertRaised)
    ]


def test_a_position_is_emitted_when_it_changes_with_the_next_version_and_never_for_a_redelivery() -> None:
    store = FakeLedgerStore()
    stock = invoiced(10, [("S1", 10)])
    assert positions(apply(store, stock)) == [("S1", 10, 1)]
    assert apply(store, stock) == []  # the same invoice again changes nothing
    assert positions(apply(store, ordered(2, "ORD-1", [("S1", 4)]))) == [("S1", 6, 2)]


def test_a_position_is_valued_at_its_list_price_and_an_unknown_sku_at_nothing() -> None:
    store = FakeLedgerStore()
    emitted = apply(store, sku("S1", price="3.00"), invoiced(5, [("S1", 4), ("S9", 4)]))
    values = {e.payload.sku_id: e.payload.value for e in emitted if isinstance(e, StockPositionChanged)}
    assert values == {"S1": Decimal("12.00"), "S9": Decimal(0)}


def test_a_cancelled_order_gives_its_stock_back() -> None:
    store = FakeLedgerStore()
    apply(store, invoiced(10, [("S1", 10)]), ordered(3, "ORD-1", [("S1", 4)]))
    assert positions(apply(store, cancelled(1, "ORD-1"))) == [("S1", 10, 2)]


def retailer_invoiced(days_ago: float, order_id: str | None, lines: list[tuple[str, int]]) -> dict[str, Any]:
    return trade("RetailerInvoiced", days_ago, {
        "invoice_number": f"SI-{uuid.uuid4().hex[:8]}",
        "outlet_id": "O1",
        "invoice_date": (NOW - timedelta(days=days_ago)).date().isoformat(),
        "order_id": order_id,
        "lines": [{"sku_id": sku, "quantity": q, "value": "2.50"} for sku, q in lines],
    })  # fmt: skip


def on_hand(store: FakeLedgerStore) -> dict[tuple[str, str], int]:
    found = asyncio.run(store.positions([("D1", "S1"), ("D1", "S2")]))
    return {(p.distributor_id, p.sku_id): p.on_hand for p in found}


def test_a_distributors_invoice_moves_stock_once_whichever_arrives_first() -> None:
    after = FakeLedgerStore()
    apply(after, invoiced(10, [("S1", 10)]), ordered(3, "ORD-1", [("S1", 4), ("S2", 1)]))
    # The invoice delivers 3 of the 4 ordered and none of S2: it replaces the order's own movement.
    assert sorted(positions(apply(after, retailer_invoiced(2, "ORD-1", [("S1", 3)])))) == [("S1", 7, 2), ("S2", 0, 2)]

    before = FakeLedgerStore()
    apply(before, invoiced(10, [("S1", 10)]), retailer_invoiced(2, "ORD-1", [("S1", 3)]))
    apply(before, ordered(3, "ORD-1", [("S1", 4), ("S2", 1)]))
    assert on_hand(before) == on_hand(after) == {("D1", "S1"): 7, ("D1", "S2"): 0}

    # Without an order it is a sale of its own: it moves stock, once.
    assert positions(apply(after, retailer_invoiced(1, None, [("S1", 2)]))) == [("S1", 5, 3)]


def test_a_reference_only_batch_emits_nothing_and_takes_no_lock() -> None:
    store = FakeLedgerStore()
    assert apply(store, sku("S1")) == []
    assert store.locks == []
    assert apply(store, invoiced(1, [("S1", 1)]))
    assert store.locks == ["evaluation"]


def test_an_alert_is_emitted_on_each_transition_only() -> None:
    store = FakeLedgerStore()
    # 28 units sold over the 28-day window: 1 a day; 100 on hand after it is 100 days of cover, over 45.
    raised = alerts(apply(store, invoiced(20, [("S1", 128)]), ordered(5, "ORD-1", [("S1", 28)])))
    assert raised == [("S1", "overstock", "raised", 1)]
    assert alerts(apply(store, ordered(4, "ORD-2", [("S1", 1)]))) == []  # still overstock: nothing new
    # 97 more sold: 2 on hand, 126 in the window (4.5 a day): under 7 days of cover, and no longer overstock.
    changed = alerts(apply(store, ordered(3, "ORD-3", [("S1", 97)])))
    assert sorted(changed) == [("S1", "overstock", "cleared", 2), ("S1", "stockout_risk", "raised", 1)]


def test_a_sku_sets_its_own_norms_and_one_without_them_keeps_the_settings() -> None:
    store = FakeLedgerStore()
    apply(store, sku("S1", overstock_min_units=500), sku("S2"))
    emitted = apply(store, invoiced(5, [("S1", 400), ("S2", 400)]))  # nothing sold: endless cover
    assert alerts(emitted) == [("S2", "overstock", "raised", 1)]


def test_negative_stock_raises_its_own_alert_and_nothing_else() -> None:
    store = FakeLedgerStore()
    emitted = apply(store, ordered(2, "ORD-1", [("S1", 30)]))
    assert alerts(emitted) == [("S1", "negative_stock", "raised", 1)]
    (alert,) = [e for e in emitted if isinstance(e, StockAlertRaised)]
    assert (alert.payload.days_of_cover, alert.payload.threshold_days) == (None, None)


def test_a_count_emits_its_variance_and_a_late_movement_before_it_revises_it_once() -> None:
    store = FakeLedgerStore()
    apply(store, invoiced(10, [("S1", 10)]))
    emitted = apply(store, counted(5, [("S1", 8)]))
    (variance,) = [e for e in emitted if isinstance(e, StockVarianceRecorded)]
    assert (variance.payload.book, variance.payload.counted, variance.payload.variance_units) == (10, 8, -2)
    assert variance.payload.revision == 1

    late_sale = ordered(7, "ORD-1", [("S1", 2)])  # before the count: the count explains it
    revised = [e for e in apply(store, late_sale) if isinstance(e, StockVarianceRecorded)]
    assert [(v.payload.book, v.payload.variance_units, v.payload.revision) for v in revised] == [(8, 0, 2)]
    assert [e for e in apply(store, late_sale) if isinstance(e, StockVarianceRecorded)] == []
