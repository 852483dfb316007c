"""scheme-engine's handler through the real BatchApplier and Postgres: redeliveries never pay twice, a late
order takes the last of a budget by event time (and the later order's grant is revised), cancellations and
claims are applied, and an invalid scheme definition is dead-lettered with its reason."""

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

import scheme_engine
from scheme_engine.handlers.evaluation import SCHEME_ENGINE_TYPES, scheme_handler
from scheme_engine.main import EVALUATION_GROUP, SCHEMA
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.db import create_pool, migrate
from tests.conftest import Infra
from tests.support.brand import event, order, reference_events

MIGRATIONS = Path(scheme_engine.__file__).parent / "migrations"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_offsets = itertools.count()
_windows = itertools.count()


@pytest.fixture(scope="module")
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    await migrate(infra.database_url, SCHEMA, MIGRATIONS)
    pool = await create_pool(infra.database_url, SCHEMA)
    await _apply(BatchApplier(**_applier_args(pool)), reference_events())
    yield pool
    await pool.close()


def _applier_args(pool: asyncpg.Pool) -> dict[str, Any]:
    return {
        "pool": pool,
        "group_id": EVALUATION_GROUP,
        "handler": scheme_handler(),
        "wanted_types": SCHEME_ENGINE_TYPES,
    }


@pytest.fixture
def applier(pool: asyncpg.Pool) -> BatchApplier:
    return BatchApplier(**_applier_args(pool))


@pytest.fixture
def start() -> datetime:
    """A validity window of its own per test: schemes apply to every stored order in their window, so tests
    sharing one would see each other's orders."""
    return EPOCH + timedelta(days=40 * next(_windows))


def _records(events: Sequence[dict[str, Any] | bytes]) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            "sellthrough.test.v1",
            0,
            next(_offsets),
            0,
            0,
            b"k",
            e if isinstance(e, bytes) else orjson.dumps(e),
            None,
            1,
            1,
            [],
        )
        for e in events
    ]


async def _apply(applier: BatchApplier, events: Sequence[dict[str, Any] | bytes]) -> None:
    await applier.apply_batch(_records(events))


def launch(scheme_id: str, start: datetime, *, total_budget: str | None = None, **definition: Any) -> dict[str, Any]:
    return event(
        "SchemeLaunched",
        {
            "scheme_id": scheme_id,
            "name": f"Scheme {scheme_id}",
            "valid_from": start.isoformat(),
            "valid_to": (start + timedelta(days=30)).isoformat(),
            "benefit": {"kind": "percent_discount", "percent": "10"},
            "total_budget": total_budget,
            **definition,
        },
        occurred_at=start - timedelta(days=1),
    )


async def applied_events(pool: asyncpg.Pool, scheme_id: str) -> list[dict[str, Any]]:
    """Every SchemeApplied this scheme queued in the outbox, oldest first."""
    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = 'SchemeApplied' ORDER BY seq")
    payloads = [orjson.loads(row["value"])["payload"] for row in rows]
    return [p for p in payloads if p["scheme_id"] == scheme_id]


def latest(payloads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for p in payloads:
        if p["order_id"] not in newest or newest[p["order_id"]]["revision"] < p["revision"]:
            newest[p["order_id"]] = p
    return newest


async def test_a_redelivered_order_never_applies_a_scheme_or_spends_budget_twice(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    first = order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))  # 105.00 gross: 10.50 off
    second = order("O2", [("S1", 10)], occurred_at=start + timedelta(hours=2))
    await _apply(applier, [launch(scheme, start, total_budget="20.00")])
    await _apply(applier, [first, first])  # a duplicate inside one batch
    await _apply(applier, [first])  # and a redelivery in a later one
    await _apply(BatchApplier(**_applier_args(pool)), [first, second])  # a restarted consumer sees it again

    emitted = await applied_events(pool, scheme)
    assert [(p["order_id"], p["revision"]) for p in emitted] == [
        (first["payload"]["order_id"], 1),
        (second["payload"]["order_id"], 1),
    ]
    # The first order was granted once, so 9.50 of the 20.00 budget is left for the second.
    assert Decimal(emitted[0]["discount_value"]) == Decimal("10.50")
    assert Decimal(emitted[1]["discount_value"]) == Decimal("9.50")
    assert emitted[1]["limited_by"] == "total_budget"


async def test_a_late_order_takes_the_last_of_the_budget_by_event_time(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    early = order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))  # earns 10.50
    later = order("O2", [("S1", 10)], occurred_at=start + timedelta(hours=5))  # earns 10.50
    await _apply(applier, [launch(scheme, start, total_budget="15.00")])
    await _apply(applier, [later])  # arrives first and takes 10.50 of 15.00
    assert latest(await applied_events(pool, scheme))[later["payload"]["order_id"]]["discount_value"] == "10.50"

    await _apply(applier, [early])  # taken earlier, synced later: it comes first in event time

    emitted = await applied_events(pool, scheme)
    newest = latest(emitted)
    assert Decimal(newest[early["payload"]["order_id"]]["discount_value"]) == Decimal("10.50")
    assert newest[early["payload"]["order_id"]]["revision"] == 1
    revised = newest[later["payload"]["order_id"]]
    assert revised["revision"] == 2
    assert Decimal(revised["discount_value"]) == Decimal("4.50")
    assert revised["limited_by"] == "total_budget"
    total = sum(Decimal(p["discount_value"]) for p in newest.values())
    assert total == Decimal("15.00")  # the cap holds, whatever the arrival order


async def test_a_cancelled_order_drops_its_benefit_and_frees_the_budget(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    first = order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))
    second = order("O2", [("S1", 10)], occurred_at=start + timedelta(hours=2))
    await _apply(applier, [launch(scheme, start, total_budget="15.00"), first, second])
    cancel = event(
        "OrderCancelled",
        {
            "order_id": first["payload"]["order_id"],
            "outlet_id": "O1",
            "distributor_id": "D1",
            "reason": "retailer refused",
        },
        occurred_at=start + timedelta(hours=3),
    )
    await _apply(applier, [cancel])

    newest = latest(await applied_events(pool, scheme))
    assert Decimal(newest[first["payload"]["order_id"]]["discount_value"]) == 0
    assert newest[first["payload"]["order_id"]]["revision"] == 2
    assert Decimal(newest[second["payload"]["order_id"]]["discount_value"]) == Decimal("10.50")


async def test_a_claim_is_assessed_and_its_over_claim_detected(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    await _apply(applier, [launch(scheme, start), order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))])
    claim = event(
        "SchemeClaimSubmitted",
        {
            "claim_id": f"CLM-{scheme}",
            "scheme_id": scheme,
            "distributor_id": "D1",
            "period_from": start.isoformat(),
            "period_to": (start + timedelta(days=30)).isoformat(),
            "claimed_amount": "30.00",
            "lines": [{"outlet_id": "O1", "amount": "20.00"}, {"outlet_id": "O2", "amount": "10.00"}],
        },
        actor="erp-1",
        occurred_at=start + timedelta(hours=48),
    )
    await _apply(applier, [claim])

    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = 'ClaimAssessed'")
    (assessed,) = [p for p in (orjson.loads(r["value"])["payload"] for r in rows) if p["scheme_id"] == scheme]
    assert Decimal(assessed["entitled"]) == Decimal("10.50")
    assert Decimal(assessed["approved"]) == Decimal("10.50")
    assert Decimal(assessed["over_claim"]) == Decimal("19.50")
    assert "claimed_more_than_entitled" in assessed["reasons"]
    o2 = assessed["lines"][1]  # O2 ordered nothing in the period: its line earns nothing
    assert (Decimal(o2["approved"]), Decimal(o2["over_claim"])) == (Decimal(0), Decimal("10.00"))
    assert "claimed_more_than_entitled" in o2["reasons"]


async def test_an_invalid_scheme_definition_is_dead_lettered_with_its_reason(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    bad = launch(scheme, start, valid_to=(start - timedelta(days=1)).isoformat())  # ends before it starts
    good = order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))
    await _apply(applier, [orjson.dumps(bad), good])

    letters = await pool.fetch(
        "SELECT reason, detail FROM dead_letters WHERE group_id = $1 AND raw = $2", EVALUATION_GROUP, orjson.dumps(bad)
    )
    assert [letter["reason"] for letter in letters] == ["invalid_event"]
    assert "valid_to" in letters[0]["detail"]
    assert await pool.fetchval("SELECT count(*) FROM scheme_events WHERE scheme_id = $1", scheme) == 0
    # The rest of the batch went ahead.
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE event_id = $1", uuid.UUID(good["event_id"])) == 1


async def test_a_claim_is_reassessed_when_a_late_order_changes_its_entitlement(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    claim = event(
        "SchemeClaimSubmitted",
        {
            "claim_id": f"CLM-{scheme}",
            "scheme_id": scheme,
            "distributor_id": "D1",
            "period_from": start.isoformat(),
            "period_to": (start + timedelta(days=30)).isoformat(),
            "claimed_amount": "10.50",
        },
        actor="erp-1",
        occurred_at=start + timedelta(days=2),
    )
    await _apply(applier, [launch(scheme, start), claim])  # before the order reached the engine
    await _apply(applier, [claim])  # a redelivery assesses nothing again
    await _apply(applier, [order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))])

    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = 'ClaimAssessed' ORDER BY seq")
    assessed = [p for p in (orjson.loads(r["value"])["payload"] for r in rows) if p["scheme_id"] == scheme]
    assert [(p["revision"], Decimal(p["entitled"]), Decimal(p["over_claim"])) for p in assessed] == [
        (1, Decimal(0), Decimal("10.50")),
        (2, Decimal("10.50"), Decimal(0)),
    ]


async def test_an_order_judged_before_its_masters_arrived_is_judged_again(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    brand, sku = f"Brand {scheme}", f"SKU-{scheme}"
    taken = order("O1", [("S1", 1)], occurred_at=start + timedelta(hours=1))
    taken["payload"]["lines"] = [{"sku_id": sku, "quantity": 10, "unit_price": "10.00"}]
    await _apply(applier, [launch(scheme, start, applies_to={"brands": [brand]}), taken])
    assert await applied_events(pool, scheme) == []  # the SKU's brand is not known yet: nothing qualifies

    registered = event(
        "SkuRegistered",
        {"sku_id": sku, "name": "New tea", "brand": brand, "category": "tea", "list_price": "10.00"},
        occurred_at=start,
    )
    await _apply(applier, [registered])

    (granted,) = await applied_events(pool, scheme)
    assert (Decimal(granted["discount_value"]), granted["revision"]) == (Decimal("10.00"), 1)


def retailer_return(
    outlet: str, lines: list[tuple[str, int]], at: datetime, *, direction: str = "from_retailer"
) -> dict[str, Any]:
    return event(
        "ReturnRecorded",
        {
            "return_id": f"RET-{uuid.uuid4().hex[:8]}",
            "distributor_id": "D1",
            "outlet_id": outlet,
            "direction": direction,
            "reason": "unsold",
            "lines": [{"sku_id": sku, "quantity": units} for sku, units in lines],
        },
        actor="erp-1",
        occurred_at=at,
    )


async def claim_assessments(pool: asyncpg.Pool, scheme_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = 'ClaimAssessed' ORDER BY seq")
    return [p for p in (orjson.loads(r["value"])["payload"] for r in rows) if p["scheme_id"] == scheme_id]


async def test_a_retailer_return_reverses_the_newest_grants_of_its_sku_and_lowers_the_claim(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    older = order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))  # 10.50 off
    newer = order("O1", [("S1", 10), ("S2", 5)], occurred_at=start + timedelta(hours=5))  # 10.50 + 2.00 off
    elsewhere = order("O2", [("S1", 10)], occurred_at=start + timedelta(hours=6))  # another outlet: untouched
    claim = event(
        "SchemeClaimSubmitted",
        {
            "claim_id": f"CLM-{scheme}",
            "scheme_id": scheme,
            "distributor_id": "D1",
            "period_from": start.isoformat(),
            "period_to": (start + timedelta(days=30)).isoformat(),
            "claimed_amount": "33.50",
        },
        actor="erp-1",
        occurred_at=start + timedelta(days=2),
    )
    await _apply(applier, [launch(scheme, start), older, newer, elsewhere, claim])
    assert Decimal((await claim_assessments(pool, scheme))[-1]["entitled"]) == Decimal("33.50")

    # 14 units of S1 come back: the newer order's 10, then 4 of the older one's, at 1.05 off per unit.
    await _apply(applier, [retailer_return("O1", [("S1", 14)], start + timedelta(days=1))])

    newest = latest(await applied_events(pool, scheme))
    revised_newer = newest[newer["payload"]["order_id"]]
    assert (revised_newer["revision"], revised_newer["qualifying_units"]) == (2, 5)  # its S2 stays
    assert Decimal(revised_newer["discount_value"]) == Decimal("2.00")
    revised_older = newest[older["payload"]["order_id"]]
    assert (revised_older["revision"], revised_older["qualifying_units"]) == (2, 6)
    assert Decimal(revised_older["discount_value"]) == Decimal("6.30")
    assert newest[elsewhere["payload"]["order_id"]]["revision"] == 1
    assessed = (await claim_assessments(pool, scheme))[-1]
    assert (assessed["revision"], Decimal(assessed["entitled"])) == (2, Decimal("18.80"))  # 6.30 + 2.00 + 10.50
    assert Decimal(assessed["over_claim"]) == Decimal("14.70")


async def test_returns_give_the_same_grants_whatever_their_arrival_order(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    taken = order("O2", [("S1", 10)], occurred_at=start + timedelta(hours=2))
    back = retailer_return("O2", [("S1", 3)], start + timedelta(hours=4))
    again = {**back, "event_id": str(uuid.uuid4())}  # the same return posted twice
    before_the_order = retailer_return("O2", [("S1", 5)], start + timedelta(hours=1))  # cannot undo a later order
    to_company = retailer_return("O2", [("S1", 5)], start + timedelta(hours=5), direction="to_company")
    await _apply(applier, [launch(scheme, start)])
    await _apply(applier, [back, before_the_order, to_company])  # synced before the order
    await _apply(applier, [again])
    await _apply(applier, [taken])
    await _apply(applier, [back])  # and redelivered

    (granted,) = await applied_events(pool, scheme)  # the order's first grant already counts the return
    assert (granted["revision"], granted["qualifying_units"]) == (1, 7)
    assert Decimal(granted["discount_value"]) == Decimal("7.35")


def submitted_claim(scheme: str, claim_id: str, amount: str, at: datetime, start: datetime) -> dict[str, Any]:
    return event(
        "SchemeClaimSubmitted",
        {
            "claim_id": claim_id,
            "scheme_id": scheme,
            "distributor_id": "D1",
            "period_from": start.isoformat(),
            "period_to": (start + timedelta(days=30)).isoformat(),
            "claimed_amount": amount,
        },
        actor="erp-1",
        occurred_at=at,
    )


async def assessments_of_claim(pool: asyncpg.Pool, claim_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = 'ClaimAssessed' ORDER BY seq")
    return [p for p in (orjson.loads(r["value"])["payload"] for r in rows) if p["claim_id"] == claim_id]


async def test_a_resubmitted_claim_is_a_new_revision_and_every_revision_is_kept(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    claim_id = f"CLM-{scheme}"
    first = submitted_claim(scheme, claim_id, "10.50", start + timedelta(days=2), start)
    corrected = submitted_claim(scheme, claim_id, "8.00", start + timedelta(days=3), start)
    await _apply(applier, [launch(scheme, start), order("O1", [("S1", 10)], occurred_at=start + timedelta(hours=1))])
    await _apply(applier, [first])
    await _apply(applier, [corrected])
    await _apply(applier, [{**corrected, "event_id": str(uuid.uuid4())}])  # re-exported alike: no new revision

    assessed = await assessments_of_claim(pool, claim_id)
    assert [(p["revision"], p["claim_revision"], Decimal(p["claimed"])) for p in assessed] == [
        (1, 1, Decimal("10.50")),
        (2, 2, Decimal("8.00")),
    ]
    history = assessed[-1]["submissions"]
    assert [(s["revision"], s["event_id"], Decimal(s["claimed_amount"]), s["current"]) for s in history] == [
        (1, first["event_id"], Decimal("10.50"), False),
        (2, corrected["event_id"], Decimal("8.00"), True),
    ]


async def test_a_revision_received_late_is_kept_but_never_replaces_a_newer_one(
    applier: BatchApplier, pool: asyncpg.Pool, start: datetime
) -> None:
    scheme = f"SCH-{uuid.uuid4().hex[:8]}"
    claim_id = f"CLM-{scheme}"
    newer = submitted_claim(scheme, claim_id, "8.00", start + timedelta(days=3), start)
    older = submitted_claim(scheme, claim_id, "10.50", start + timedelta(days=2), start)
    await _apply(applier, [launch(scheme, start), newer])
    await _apply(applier, [older])  # a connector that was offline sends the earlier submission afterwards

    assessed = await assessments_of_claim(pool, claim_id)
    latest = assessed[-1]
    assert (latest["claim_revision"], Decimal(latest["claimed"])) == (1, Decimal("8.00"))
    assert [(s["revision"], s["current"]) for s in latest["submissions"]] == [(1, True), (2, False)]
    stored = await pool.fetchval(
        "SELECT count(*) FROM claim_submissions WHERE distributor_id = 'D1' AND claim_id = $1", claim_id
    )
    assert stored == 2
