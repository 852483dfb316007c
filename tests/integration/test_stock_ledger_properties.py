"""Property: whatever the arrival order, batching and duplication of a distributor's history, the ledger
in Postgres equals a plain recomputation from the sorted, de-duplicated history."""

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stock_ledger
from sellthrough_runtime.applier import BatchApplier
from stock_ledger.domain.movements import STOCK_EVENT_TYPES
from stock_ledger.handlers.ledger import ledger_handler
from stock_ledger.main import SCHEMA
from stock_ledger.settings import StockLedgerSettings
from tests.conftest import Infra
from tests.support.brand import event
from tests.support.replay import as_records, pool_on_own_loop

SKUS = ("S1", "S2")
START = datetime(2026, 6, 1, tzinfo=UTC)
MIGRATIONS = Path(stock_ledger.__file__).parent / "migrations"

minutes = st.integers(min_value=0, max_value=40)  # a small range, so events often share a timestamp
quantities = st.integers(min_value=1, max_value=50)
sku_lines = st.lists(st.tuples(st.sampled_from(SKUS), quantities), min_size=1, max_size=3)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random history for one distributor (its id set later, unique per example)."""
    history: list[dict[str, Any]] = []
    for n in range(draw(st.integers(min_value=1, max_value=25))):
        at = START + timedelta(minutes=draw(minutes))
        kind = draw(
            st.sampled_from(["invoice", "order", "order", "return_in", "return_out", "adjustment", "count", "opening"])
        )
        lines = draw(sku_lines)
        if kind == "invoice":
            history.append(
                _trade(
                    "PrimaryInvoiced",
                    at,
                    {
                        "invoice_number": f"INV-{n}",
                        "invoice_date": "2026-06-01",
                        "lines": [_line(s, q, price=True) for s, q in lines],
                    },
                )
            )
        elif kind == "order":
            order_id = f"ORD-{n}"
            history.append(
                _trade(
                    "OrderCaptured",
                    at,
                    {
                        "order_id": order_id,
                        "outlet_id": "O1",
                        "rep_id": "REP-1",
                        "lines": [_line(s, q, price=True) for s, q in lines],
                    },
                )
            )
            outcome = draw(st.sampled_from(["open", "delivered", "short", "cancelled", "delivered_then_cancelled"]))
            later = at + timedelta(minutes=draw(st.integers(min_value=0, max_value=10)))
            if outcome in ("delivered", "short", "delivered_then_cancelled"):
                delivered = [_line(s, q if outcome != "short" else q // 2) for s, q in lines]
                history.append(
                    _trade(
                        "OrderDelivered",
                        later,
                        {"delivery_id": f"DEL-{n}", "order_id": order_id, "outlet_id": "O1", "lines": delivered},
                    )
                )
            if outcome in ("cancelled", "delivered_then_cancelled"):
                history.append(
                    _trade(
                        "OrderCancelled",
                        later + timedelta(minutes=1),
                        {"order_id": order_id, "outlet_id": "O1", "reason": "retailer refused"},
                    )
                )
        elif kind in ("return_in", "return_out"):
            history.append(
                _trade(
                    "ReturnRecorded",
                    at,
                    {
                        "return_id": f"RET-{n}",
                        "direction": "from_retailer" if kind == "return_in" else "to_company",
                        "reason": "damaged",
                        "lines": [_line(s, q) for s, q in lines],
                    },
                )
            )
        elif kind == "adjustment":
            history.append(
                _trade(
                    "StockAdjusted",
                    at,
                    {
                        "adjustment_id": f"ADJ-{n}",
                        "reason": "breakage",
                        "lines": [
                            {"sku_id": s, "quantity_delta": q * draw(st.sampled_from([1, -1]))} for s, q in lines
                        ],
                    },
                )
            )
        else:
            counted = draw(
                st.lists(
                    st.tuples(st.sampled_from(SKUS), st.integers(min_value=0, max_value=80)),
                    min_size=1,
                    max_size=2,
                    unique_by=lambda t: t[0],
                )
            )
            history.append(
                _trade(
                    "StockCounted",
                    at,
                    {
                        "count_id": f"CNT-{n}",
                        "counted_at": at.isoformat(),
                        "purpose": "opening" if kind == "opening" else "count",
                        "lines": [{"sku_id": s, "quantity": q} for s, q in counted],
                    },
                )
            )
    return history


def _line(sku: str, quantity: int, *, price: bool = False) -> dict[str, Any]:
    return {"sku_id": sku, "quantity": quantity, **({"unit_price": "2.50"} if price else {})}


def _trade(event_type: str, at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return event(event_type, {**payload, "distributor_id": "PLACEHOLDER"}, actor="erp-1", occurred_at=at)


def recompute(history: list[dict[str, Any]]) -> tuple[dict[str, int], dict[tuple[str, str], tuple[int, int]]]:
    """The specification, written plainly: walk the de-duplicated history in event-time order."""
    unique = list({e["event_id"]: e for e in history}.values())
    settled = {e["payload"]["order_id"] for e in unique if e["event_type"] in ("OrderDelivered", "OrderCancelled")}
    steps: list[tuple[datetime, int, str, dict[str, Any]]] = []
    for e in unique:
        if e["event_type"] == "StockCounted":
            steps.append((datetime.fromisoformat(e["payload"]["counted_at"]), 1, e["event_id"], e))
        elif not (e["event_type"] == "OrderCaptured" and e["payload"]["order_id"] in settled):
            steps.append((datetime.fromisoformat(e["occurred_at"]), 0, e["event_id"], e))
    # Movements at the same instant as a count are counted (come first); counts tie-break by event id.
    steps.sort(key=lambda s: (s[0], s[1], uuid.UUID(s[2]) if s[1] else 0))
    balance: dict[str, int] = defaultdict(int)
    variances: dict[tuple[str, str], tuple[int, int]] = {}
    sign = {"PrimaryInvoiced": 1, "OrderCaptured": -1, "OrderDelivered": -1, "OrderCancelled": 0}
    for _, _, event_id, e in steps:
        p = e["payload"]
        if e["event_type"] == "StockCounted":
            for line in p["lines"]:
                if p["purpose"] == "count":
                    variances[(event_id, line["sku_id"])] = (balance[line["sku_id"]], line["quantity"])
                balance[line["sku_id"]] = line["quantity"]
        elif e["event_type"] == "ReturnRecorded":
            for line in p["lines"]:
                balance[line["sku_id"]] += line["quantity"] * (1 if p["direction"] == "from_retailer" else -1)
        elif e["event_type"] == "StockAdjusted":
            for line in p["lines"]:
                balance[line["sku_id"]] += line["quantity_delta"]
        else:
            for line in p.get("lines", []):
                balance[line["sku_id"]] += sign[e["event_type"]] * line["quantity"]
    return dict(balance), variances


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    # Hypothesis drives a synchronous test; the database work runs on a loop of its own.
    with pool_on_own_loop(infra.database_url, SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), seed=st.integers(min_value=0, max_value=2**32))
def test_ledger_equals_recomputation_whatever_the_arrival_order(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool], history: list[dict[str, Any]], seed: int
) -> None:
    loop, pool = loop_and_pool
    distributor = f"D-{uuid.uuid4().hex[:12]}"  # a fresh distributor per example: no state leaks between them
    for e in history:
        e["payload"]["distributor_id"] = distributor
    rng = random.Random(seed)
    arrivals = history + rng.sample(history, k=len(history) // 3)  # redeliveries and client retries
    rng.shuffle(arrivals)
    cuts = sorted(rng.sample(range(1, len(arrivals)), k=min(3, len(arrivals) - 1))) if len(arrivals) > 1 else []
    batches = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]

    applier = BatchApplier(
        pool=pool, group_id="property", handler=ledger_handler(StockLedgerSettings()), wanted_types=STOCK_EVENT_TYPES
    )
    offset = rng.randint(0, 10**9)
    for batch in batches:
        loop.run_until_complete(applier.apply_batch(as_records(batch, offset)))
        offset += len(batch)

    expected_balance, expected_variances = recompute(history)
    positions = loop.run_until_complete(
        pool.fetch("SELECT sku_id, on_hand FROM positions WHERE distributor_id = $1", distributor)
    )
    variances = loop.run_until_complete(
        pool.fetch(
            "SELECT v.count_event_id, v.sku_id, v.book, v.counted FROM variances v "
            "JOIN counts c ON c.event_id = v.count_event_id AND c.sku_id = v.sku_id WHERE c.distributor_id = $1",
            distributor,
        )
    )
    # A position at zero and no position hold the same stock; any other difference is a ledger error.
    assert {r["sku_id"]: r["on_hand"] for r in positions if r["on_hand"]} == {
        sku: units for sku, units in expected_balance.items() if units
    }
    assert {(str(r["count_event_id"]), r["sku_id"]): (r["book"], r["counted"]) for r in variances} == expected_variances
