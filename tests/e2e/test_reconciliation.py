"""Figures that tie out: random histories of invoices, orders, cancellations (some before their order),
deliveries (some short), distributors' invoices to retailers (delivering an order, without one, or naming an order never
captured), returns both ways, adjustments and counts, posted out of order through order-capture, the
broker, stock-ledger and query-api as real processes. query-api's reconciliation (built from its own net-sales facts)
must equal an independent recomputation of book stock, and the stock ledger's on-hand, for every position."""

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import OUTLETS, REPS, SKUS, event, order
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
Position = tuple[str, str]


@dataclass
class Ledger:
    """Book stock by the stock ledger's rule, kept by the test: latest count + active movements after it."""

    movements: dict[Position, list[tuple[datetime, int]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[Position, list[tuple[datetime, int]]] = field(default_factory=lambda: defaultdict(list))

    def book(self, position: Position, before: datetime | None = None) -> int:
        counts = [c for c in self.counts[position] if before is None or c[0] < before]
        last = max(counts, default=None)
        return (last[1] if last else 0) + sum(
            units
            for at, units in self.movements[position]
            if (last is None or at > last[0]) and (before is None or at < before)
        )

    def flows(self, position: Position, start: datetime, end: datetime) -> int:
        return sum(units for at, units in self.movements[position] if start <= at < end)


def distributor_invoice(
    outlet: str, lines: list[tuple[str, int]], at: datetime, order_id: str | None
) -> dict[str, Any]:
    return event(
        "RetailerInvoiced",
        {
            "invoice_number": f"SI-{uuid.uuid4().hex[:8]}",
            "distributor_id": OUTLETS[outlet],
            "outlet_id": outlet,
            "invoice_date": at.date().isoformat(),
            "order_id": order_id,
            "lines": [{"sku_id": s, "quantity": q, "value": "10.00"} for s, q in lines],
        },
        occurred_at=at,
    )


def history(seed: int, ledger: Ledger) -> list[dict[str, Any]]:
    """One random history, recorded in `ledger` as the ledger must count it. Every event time is distinct, within
    the history and across seeds (their seconds differ), so no count ties with a movement or another count."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    minutes = rng.sample(range(1, 9 * 24 * 60), 70)

    def at() -> datetime:
        return NOW - timedelta(minutes=minutes.pop(), seconds=seed)

    def lines() -> list[tuple[str, int]]:
        return [(sku, rng.randint(1, 20)) for sku in rng.sample(list(SKUS), rng.randint(1, 3))]

    for distributor in ("D1", "D2", "D3"):
        for _ in range(2):
            when = at()
            invoiced = lines()
            events.append(
                event(
                    "PrimaryInvoiced",
                    {
                        "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
                        "distributor_id": distributor,
                        "invoice_date": when.date().isoformat(),
                        "lines": [{"sku_id": s, "quantity": q, "unit_price": "8.00"} for s, q in invoiced],
                    },
                    occurred_at=when,
                )
            )
            for sku, quantity in invoiced:
                ledger.movements[(distributor, sku)].append((when, quantity))
        outlets = [o for o, d in OUTLETS.items() if d == distributor]
        rep = next(r for r, d in REPS.items() if d == distributor)
        for _ in range(4):
            when = at()
            placed = order(rng.choice(outlets), lines(), occurred_at=when, rep_id=rep)
            p = placed["payload"]
            about = {"order_id": p["order_id"], "outlet_id": p["outlet_id"], "distributor_id": distributor}
            events.append(placed)
            fate = rng.choice(["open", "cancelled", "delivered", "short", "cancelled_then_delivered", "invoiced"])
            if fate in ("cancelled", "cancelled_then_delivered"):
                events.append(event("OrderCancelled", {**about, "reason": "shop closed"}, occurred_at=at()))
            delivered: list[tuple[str, int]] = []
            if fate in ("delivered", "short", "cancelled_then_delivered"):
                delivered = [
                    (line["sku_id"], line["quantity"] if fate != "short" else rng.randint(0, line["quantity"]))
                    for line in p["lines"]
                ]
                delivered_at = at()
                events.append(
                    event(
                        "OrderDelivered",
                        {
                            **about,
                            "delivery_id": f"DLV-{uuid.uuid4().hex[:8]}",
                            "lines": [{"sku_id": s, "quantity": q} for s, q in delivered],
                        },
                        occurred_at=delivered_at,
                    )
                )
                for sku, quantity in delivered:
                    ledger.movements[(distributor, sku)].append((delivered_at, -quantity))
            elif fate == "open":
                for line in p["lines"]:
                    ledger.movements[(distributor, line["sku_id"])].append((when, -line["quantity"]))
            elif fate == "invoiced":  # the distributor's DMS invoice is the order's delivery
                invoiced_at = at()
                billed = [(line["sku_id"], rng.randint(1, line["quantity"])) for line in p["lines"]]
                events.append(distributor_invoice(p["outlet_id"], billed, invoiced_at, p["order_id"]))
                for sku, quantity in billed:
                    ledger.movements[(distributor, sku)].append((invoiced_at, -quantity))
        # A DMS invoice without an order, and one naming an order never captured: goods left either way.
        for order_id in (None, f"ORD-NEVER-{uuid.uuid4().hex[:6]}"):
            when = at()
            billed = lines()
            events.append(distributor_invoice(rng.choice(outlets), billed, when, order_id))
            for sku, quantity in billed:
                ledger.movements[(distributor, sku)].append((when, -quantity))
        for direction in ("from_retailer", "to_company"):
            when = at()
            returned = lines()
            events.append(
                event(
                    "ReturnRecorded",
                    {
                        "return_id": f"RET-{uuid.uuid4().hex[:8]}",
                        "distributor_id": distributor,
                        "outlet_id": rng.choice(outlets) if direction == "from_retailer" else None,
                        "direction": direction,
                        "reason": rng.choice(["damaged", "expired", "unsold"]),
                        "lines": [{"sku_id": s, "quantity": q} for s, q in returned],
                    },
                    occurred_at=when,
                )
            )
            for sku, quantity in returned:
                ledger.movements[(distributor, sku)].append(
                    (when, quantity if direction == "from_retailer" else -quantity)
                )
        when = at()
        adjusted = [(sku, rng.randint(-5, 5) or 1) for sku in rng.sample(list(SKUS), 2)]
        events.append(
            event(
                "StockAdjusted",
                {
                    "adjustment_id": f"ADJ-{uuid.uuid4().hex[:8]}",
                    "distributor_id": distributor,
                    "reason": "breakage",
                    "lines": [{"sku_id": s, "quantity_delta": q} for s, q in adjusted],
                },
                occurred_at=when,
            )
        )
        for sku, delta in adjusted:
            ledger.movements[(distributor, sku)].append((when, delta))
        when = at()
        counted = [(sku, rng.randint(0, 40)) for sku in rng.sample(list(SKUS), 2)]
        events.append(
            event(
                "StockCounted",
                {
                    "count_id": f"CNT-{uuid.uuid4().hex[:8]}",
                    "distributor_id": distributor,
                    "counted_at": when.isoformat(),
                    "lines": [{"sku_id": s, "quantity": q} for s, q in counted],
                },
                occurred_at=when,
            )
        )
        for sku, quantity in counted:
            ledger.counts[(distributor, sku)].append((when, quantity))
    rng.shuffle(events)  # offline devices and late connectors: arrival order is not event order
    return events


@dataclass
class Stack:
    services: dict[str, ServiceProcess]
    tokens: Tokens
    ledger: Ledger

    async def reconciliation(self, **params: str) -> dict[str, Any]:
        async with httpx.AsyncClient(
            base_url=self.services["query-api"].url, headers=self.tokens.header("analyst")
        ) as client:
            response = await client.get("/v1/reconciliation", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def stack(infra: Infra, tokens: Tokens) -> Iterator[Stack]:
    ledger = Ledger()
    with running_with_reference_data(infra, tokens, ["order-capture", "stock-ledger", "query-api"]) as services:
        running = Stack(services, tokens, ledger)
        api = Api(services, tokens)
        for seed in (1, 2, 3):
            events = history(seed, ledger)
            for start in range(0, len(events), 17):
                api.post(events[start : start + 17])
        expected = {p: ledger.book(p) for p in {*ledger.movements, *ledger.counts}}

        def settled(body: dict[str, Any]) -> bool:
            found = {(r["distributor_id"], r["sku_id"]): r for r in body["rows"]}
            return all(
                (row := found.get(p)) is not None and row["book_now"] == book and row["ledger_on_hand"] == book
                for p, book in expected.items()
            )

        asyncio.run(
            eventually(
                lambda: running.reconciliation(by="sku", **{"from": str(TODAY - timedelta(days=10))}),
                settled,
                timeout=90,
                what="query-api and the stock ledger agreeing with the test's own books",
            )
        )
        yield running


async def test_every_position_ties_out_with_the_stock_ledger(stack: Stack) -> None:
    body = await stack.reconciliation(by="sku", **{"from": str(TODAY - timedelta(days=10))})
    assert body["positions"] >= 9
    assert body["positions_differing"] == 0
    assert [r for r in body["rows"] if r["ledger_difference"] != 0] == []
    assert body["total"]["book_now"] == sum(
        stack.ledger.book(p) for p in {*stack.ledger.movements, *stack.ledger.counts}
    )


async def test_a_period_reconciles_from_opening_to_closing(stack: Stack) -> None:
    first, last = TODAY - timedelta(days=5), TODAY - timedelta(days=1)
    start = datetime.combine(first, time(0), UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), UTC)
    body = await stack.reconciliation(by="sku", **{"from": str(first), "to": str(last)})
    checked = 0
    for row in body["rows"]:
        position = (row["distributor_id"], row["sku_id"])
        assert row["opening"] == stack.ledger.book(position, before=start), position
        assert row["closing"] == stack.ledger.book(position, before=end), position
        flows = row["primary_in"] - row["secondary_out"] + row["returns_in"] - row["returns_out"] + row["adjustments"]
        assert row["closing"] == row["opening"] + flows + row["count_variance"], position
        if not any(start <= at < end for at, _ in stack.ledger.counts[position]):
            assert row["count_variance"] == 0, position
            assert row["counted"] is None, position
            assert flows == stack.ledger.flows(position, start, end), position
        checked += 1
    assert checked >= 9


async def test_consecutive_periods_chain_and_distributor_rows_sum_their_skus(stack: Stack) -> None:
    early = await stack.reconciliation(
        by="sku", **{"from": str(TODAY - timedelta(days=9)), "to": str(TODAY - timedelta(days=4))}
    )
    late = await stack.reconciliation(by="sku", **{"from": str(TODAY - timedelta(days=3)), "to": str(TODAY)})
    closing = {(r["distributor_id"], r["sku_id"]): r["closing"] for r in early["rows"]}
    assert {(r["distributor_id"], r["sku_id"]): r["opening"] for r in late["rows"]} == closing

    by_distributor = await stack.reconciliation(**{"from": str(TODAY - timedelta(days=3))})
    for row in by_distributor["rows"]:
        skus = [r for r in late["rows"] if r["distributor_id"] == row["distributor_id"]]
        assert row["closing"] == sum(r["closing"] for r in skus)
        assert row["secondary_out"] == sum(r["secondary_out"] for r in skus)
