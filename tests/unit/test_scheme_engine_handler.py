"""scheme-engine's handler decisions against an in-memory SchemeStore: which orders are judged again, which
schemes re-allocated, which grants emitted with which revision, which claims re-assessed. The SQL keeps its
PostgreSQL tests (tests/integration/test_scheme_engine_handler.py)."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from scheme_engine.handlers.evaluation import apply_batch
from sellthrough_contracts import Envelope, parse_event
from sellthrough_contracts.schemes import ClaimAssessed, SchemeApplied
from tests.support.brand import event, order, reference_events
from tests.support.fakes.scheme_engine import FakeSchemeStore

START = datetime(2026, 3, 1, tzinfo=UTC)


def launch(scheme_id: str, *, total_budget: str | None = None, **definition: Any) -> dict[str, Any]:
    return event(
        "SchemeLaunched",
        {
            "scheme_id": scheme_id,
            "name": f"Scheme {scheme_id}",
            "valid_from": START.isoformat(),
            "valid_to": (START + timedelta(days=30)).isoformat(),
            "benefit": {"kind": "percent_discount", "percent": "10"},
            "total_budget": total_budget,
            **definition,
        },
        occurred_at=START - timedelta(days=1),
    )


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def store_with_masters() -> FakeSchemeStore:
    store = FakeSchemeStore()
    apply(store, *reference_events())
    return store


def apply(store: FakeSchemeStore, *documents: dict[str, Any]) -> list[Envelope]:
    before = len(store.outbox)
    asyncio.run(apply_batch(store, [parse_event(d).stamped(START) for d in documents]))
    return store.outbox[before:]


def grants(emitted: list[Envelope]) -> list[tuple[str, Decimal, int]]:
    return [
        (e.payload.order_id, e.payload.discount_value, e.payload.revision)
        for e in emitted
        if isinstance(e, SchemeApplied)
    ]


def test_a_redelivered_order_is_granted_once() -> None:
    store = store_with_masters()
    first = order("O1", [("S1", 10)], occurred_at=at(1))  # 105.00 gross: 10.50 off
    apply(store, launch("SCH-1", total_budget="20.00"))
    assert grants(apply(store, first, first)) == [(first["payload"]["order_id"], Decimal("10.50"), 1)]
    assert grants(apply(store, first)) == []


def test_a_late_order_takes_the_budget_first_and_the_later_grant_is_revised() -> None:
    store = store_with_masters()
    early = order("O1", [("S1", 10)], occurred_at=at(1))
    later = order("O2", [("S1", 10)], occurred_at=at(5))
    apply(store, launch("SCH-1", total_budget="15.00"))
    assert grants(apply(store, later)) == [(later["payload"]["order_id"], Decimal("10.50"), 1)]
    assert grants(apply(store, early)) == [
        (early["payload"]["order_id"], Decimal("10.50"), 1),
        (later["payload"]["order_id"], Decimal("4.50"), 2),
    ]


def test_a_cancelled_order_is_granted_nothing_and_frees_the_budget() -> None:
    store = store_with_masters()
    first = order("O1", [("S1", 10)], occurred_at=at(1))
    second = order("O2", [("S1", 10)], occurred_at=at(2))
    apply(store, launch("SCH-1", total_budget="15.00"), first, second)
    cancel = event(
        "OrderCancelled",
        {"order_id": first["payload"]["order_id"], "outlet_id": "O1", "distributor_id": "D1", "reason": "refused"},
        occurred_at=at(3),
    )
    assert grants(apply(store, cancel)) == [
        (first["payload"]["order_id"], Decimal("0.00"), 2),
        (second["payload"]["order_id"], Decimal("10.50"), 2),
    ]


def test_a_new_scheme_judges_the_stored_orders_of_its_window_only() -> None:
    store = store_with_masters()
    inside = order("O1", [("S1", 10)], occurred_at=at(1))
    outside = order("O2", [("S1", 10)], occurred_at=START - timedelta(days=2))
    apply(store, inside, outside)
    store.evaluated.clear()
    assert grants(apply(store, launch("SCH-1"))) == [(inside["payload"]["order_id"], Decimal("10.50"), 1)]
    assert store.evaluated == [{uuid.UUID(inside["event_id"])}]


def test_an_order_judged_before_its_sku_was_known_is_judged_again_when_it_arrives() -> None:
    store = store_with_masters()
    taken = order("O1", [("S1", 1)], occurred_at=at(1))
    taken["payload"]["lines"] = [{"sku_id": "SKU-NEW", "quantity": 10, "unit_price": "10.00"}]
    assert grants(apply(store, launch("SCH-1", applies_to={"brands": ["New brand"]}), taken)) == []
    registered = event(
        "SkuRegistered",
        {"sku_id": "SKU-NEW", "name": "New tea", "brand": "New brand", "category": "tea", "list_price": "10.00"},
        occurred_at=START,
    )
    assert grants(apply(store, registered)) == [(taken["payload"]["order_id"], Decimal("10.00"), 1)]


def test_a_retailer_return_revises_the_grants_at_its_outlet_only() -> None:
    store = store_with_masters()
    here = order("O1", [("S1", 10)], occurred_at=at(1))
    elsewhere = order("O2", [("S1", 10)], occurred_at=at(2))
    apply(store, launch("SCH-1"), here, elsewhere)
    returned = event(
        "ReturnRecorded",
        {
            "return_id": "RET-1",
            "distributor_id": "D1",
            "outlet_id": "O1",
            "direction": "from_retailer",
            "reason": "unsold",
            "lines": [{"sku_id": "S1", "quantity": 4}],
        },
        actor="erp-1",
        occurred_at=at(30),
    )
    assert grants(apply(store, returned)) == [(here["payload"]["order_id"], Decimal("6.30"), 2)]


def submitted_claim(scheme_id: str, claimed: str, hours: float, claim_id: str = "CLM-1") -> dict[str, Any]:
    return event(
        "SchemeClaimSubmitted",
        {
            "claim_id": claim_id,
            "scheme_id": scheme_id,
            "distributor_id": "D1",
            "period_from": START.isoformat(),
            "period_to": (START + timedelta(days=30)).isoformat(),
            "claimed_amount": claimed,
        },
        actor="erp-1",
        occurred_at=at(hours),
    )


def assessed(emitted: list[Envelope]) -> list[tuple[str, int, int, Decimal, Decimal]]:
    return [
        (e.payload.scheme_id, e.payload.revision, e.payload.claim_revision, e.payload.claimed, e.payload.entitled)
        for e in emitted
        if isinstance(e, ClaimAssessed)
    ]


def test_a_claim_is_assessed_on_arrival_and_again_only_when_its_entitlement_changes() -> None:
    store = store_with_masters()
    tea, biscuits = {"brands": ["Sunrise Tea"]}, {"brands": ["Koko Biscuits"]}
    apply(store, launch("SCH-1", applies_to=tea), launch("SCH-2", applies_to=biscuits))
    apply(store, order("O1", [("S1", 10)], occurred_at=at(1)))
    claim = submitted_claim("SCH-1", "30.00", 48)
    assert assessed(apply(store, claim)) == [("SCH-1", 1, 1, Decimal("30.00"), Decimal("10.50"))]
    # An order of another scheme's SKUs re-allocates SCH-2 only: the claim on SCH-1 is not assessed again.
    assert assessed(apply(store, order("O1", [("S3", 4)], occurred_at=at(2)))) == []
    late = order("O2", [("S1", 10)], occurred_at=at(3))  # SCH-1 again: the entitlement grows
    assert assessed(apply(store, late)) == [("SCH-1", 2, 1, Decimal("30.00"), Decimal("21.00"))]


def test_a_resubmitted_claim_is_a_new_revision_but_the_same_content_again_is_not() -> None:
    store = store_with_masters()
    apply(store, launch("SCH-1"), order("O1", [("S1", 10)], occurred_at=at(1)))
    apply(store, submitted_claim("SCH-1", "10.50", 48))
    corrected = submitted_claim("SCH-1", "8.00", 72)
    assert assessed(apply(store, corrected)) == [("SCH-1", 2, 2, Decimal("8.00"), Decimal("10.50"))]
    assert assessed(apply(store, {**corrected, "event_id": str(uuid.uuid4())})) == []  # a re-export
    assert [r for r, _ in store.submitted[("D1", "CLM-1")]] == [1, 2]


def test_a_revision_received_late_is_kept_but_never_replaces_a_newer_one() -> None:
    store = store_with_masters()
    apply(store, launch("SCH-1"), submitted_claim("SCH-1", "8.00", 72))
    (late,) = [e for e in apply(store, submitted_claim("SCH-1", "10.50", 48)) if isinstance(e, ClaimAssessed)]
    assert (late.payload.claim_revision, late.payload.claimed) == (1, Decimal("8.00"))
    assert [(s.revision, s.current) for s in late.payload.submissions] == [(1, True), (2, False)]
