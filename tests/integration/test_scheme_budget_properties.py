"""Property: whatever the arrival order, batching and duplication of a scheme's launch, orders and
cancellations, the grants scheme-engine stores and emits equal the pure domain's allocation over the
de-duplicated, non-cancelled orders: a redelivered order is never paid twice and the budget is spent in
event-time order."""

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scheme_engine
from scheme_engine.domain import OrderContext, OutletProfile, SchemesState, allocate_budget, evaluate
from scheme_engine.handlers.evaluation import SCHEME_ENGINE_TYPES, scheme_handler
from scheme_engine.main import SCHEMA
from sellthrough_contracts import parse_event
from sellthrough_contracts.schemes import SchemeLaunched
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.db import create_pool, migrate
from tests.conftest import Infra
from tests.support.brand import event, reference_events

MIGRATIONS = Path(scheme_engine.__file__).parent / "migrations"
EPOCH = datetime(2027, 1, 1, tzinfo=UTC)
_windows = itertools.count()


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A scheme definition (its window set later, unique per example) and its orders, some to be cancelled."""
    launch = {
        "benefit": {"kind": "percent_discount", "percent": draw(st.sampled_from(["5", "10", "12.5"]))},
        "total_budget": draw(st.sampled_from([None, "3.00", "10.00", "25.00"])),
        "per_outlet_budget": draw(st.sampled_from([None, "4.00", "9.99"])),
    }
    orders = []
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        outlet = draw(st.sampled_from(["O1", "O2"]))
        orders.append(
            {
                "minute": draw(st.integers(min_value=0, max_value=20)),  # ties are frequent
                "outlet": outlet,
                "lines": [
                    {"sku_id": sku, "quantity": quantity, "unit_price": "3.35"}
                    for sku, quantity in draw(
                        st.lists(
                            st.tuples(st.sampled_from(["S1", "S3"]), st.integers(min_value=1, max_value=40)),
                            min_size=1,
                            max_size=2,
                        )
                    )
                ],
                "cancelled": draw(st.booleans()) and draw(st.booleans()),
            }
        )
    return launch, orders


def records(events: list[dict[str, Any]], offset: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord("sellthrough.test.v1", 0, offset + i, 0, 0, b"k", orjson.dumps(e), None, 1, 1, [])
        for i, e in enumerate(events)
    ]


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    # Hypothesis drives a synchronous test; the database work runs on a loop of its own.
    loop = asyncio.new_event_loop()
    loop.run_until_complete(migrate(infra.database_url, SCHEMA, MIGRATIONS))
    pool = loop.run_until_complete(create_pool(infra.database_url, SCHEMA))
    applier = BatchApplier(pool=pool, group_id="property", handler=scheme_handler(), wanted_types=SCHEME_ENGINE_TYPES)
    loop.run_until_complete(applier.apply_batch(records(reference_events(), 0)))
    yield loop, pool
    loop.run_until_complete(pool.close())
    loop.close()


def expected_grants(
    launch: dict[str, Any], orders: list[dict[str, Any]]
) -> dict[uuid.UUID, tuple[Decimal, str | None]]:
    """The specification: the pure domain over the orders that stand, allocated by event time."""
    scheme = parse_event(launch)
    assert isinstance(scheme, SchemeLaunched)
    state = SchemesState.from_events([scheme])
    earned = []
    for raw in orders:
        captured = parse_event(raw)
        assert isinstance(captured, OrderCaptured)
        earned += evaluate(OrderContext.from_order_captured(captured, OutletProfile(), {}), state)
    granted = allocate_budget(scheme.payload, earned)
    return {b.order_event_id: (b.value, b.limited_by) for b in granted if b.value > 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), seed=st.integers(min_value=0, max_value=2**32))
def test_grants_equal_the_domain_allocation_whatever_the_arrival_order(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
    history: tuple[dict[str, Any], list[dict[str, Any]]],
    seed: int,
) -> None:
    loop, pool = loop_and_pool
    definition, drawn_orders = history
    start = EPOCH + timedelta(days=40 * next(_windows))  # a window of its own: no other example's orders in it
    scheme_id = f"SCH-{uuid.uuid4().hex[:10]}"
    launch = event(
        "SchemeLaunched",
        {
            "scheme_id": scheme_id,
            "name": "property",
            "valid_from": start.isoformat(),
            "valid_to": (start + timedelta(days=1)).isoformat(),
            **definition,
        },
        occurred_at=start - timedelta(days=1),
    )
    orders, cancels, standing = [], [], []
    for n, drawn in enumerate(drawn_orders):
        captured = event(
            "OrderCaptured",
            {
                "order_id": f"ORD-{scheme_id}-{n}",
                "outlet_id": drawn["outlet"],
                "distributor_id": "D1",
                "rep_id": "REP-1",
                "lines": drawn["lines"],
            },
            occurred_at=start + timedelta(minutes=drawn["minute"]),
        )
        orders.append(captured)
        if drawn["cancelled"]:
            cancels.append(
                event(
                    "OrderCancelled",
                    {
                        "order_id": f"ORD-{scheme_id}-{n}",
                        "outlet_id": drawn["outlet"],
                        "distributor_id": "D1",
                        "reason": "x",
                    },
                    occurred_at=start + timedelta(hours=2),
                )
            )
        else:
            standing.append(captured)

    rng = random.Random(seed)
    history_events = [launch, *orders, *cancels]
    arrivals = history_events + rng.sample(history_events, k=len(history_events) // 2)  # redeliveries
    rng.shuffle(arrivals)
    cuts = sorted(rng.sample(range(1, len(arrivals)), k=min(3, len(arrivals) - 1)))
    batches = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]
    applier = BatchApplier(pool=pool, group_id="property", handler=scheme_handler(), wanted_types=SCHEME_ENGINE_TYPES)
    offset = rng.randint(10**6, 10**9)
    for batch in batches:
        loop.run_until_complete(applier.apply_batch(records(batch, offset)))
        offset += len(batch)

    expected = expected_grants(launch, standing)
    stored = loop.run_until_complete(
        pool.fetch(
            "SELECT order_event_id, discount_value, free_units_cost, limited_by FROM applied WHERE scheme_id = $1",
            scheme_id,
        )
    )
    assert {
        r["order_event_id"]: (Decimal(r["discount_value"]) + Decimal(r["free_units_cost"]), r["limited_by"])
        for r in stored
        if r["discount_value"] + r["free_units_cost"] > 0
    } == expected

    # Readers keeping the newest revision per order see the same grants, and revisions never repeat.
    emitted = loop.run_until_complete(pool.fetch("SELECT value FROM outbox WHERE event_type = 'SchemeApplied'"))
    payloads = [p for p in (orjson.loads(r["value"])["payload"] for r in emitted) if p["scheme_id"] == scheme_id]
    revisions = [(p["order_event_id"], p["revision"]) for p in payloads]
    assert len(revisions) == len(set(revisions))
    newest: dict[str, dict[str, Any]] = {}
    for p in payloads:
        if p["order_event_id"] not in newest or newest[p["order_event_id"]]["revision"] < p["revision"]:
            newest[p["order_event_id"]] = p
    assert {
        uuid.UUID(k): (Decimal(p["discount_value"]) + Decimal(p["free_units_cost"]), p["limited_by"])
        for k, p in newest.items()
        if Decimal(p["discount_value"]) + Decimal(p["free_units_cost"]) > 0
    } == expected
    budget = definition["total_budget"]
    if budget is not None:
        assert sum((value for value, _ in expected.values()), Decimal(0)) <= Decimal(budget)
