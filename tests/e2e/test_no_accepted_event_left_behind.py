"""What order-capture accepts, every consumer applies: edge cases that must be accepted (old but inside the
poster's window, odd decimal spellings, non-ASCII text, far-off scheme ends) and the cases the edge must
refuse (times consumers cannot use, control characters, strings for numbers, reused ids), posted to the four
services as real processes. Every accepted event must be applied by every consumer that takes its type, and
no consumer may dead-letter anything."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from order_capture.adapters.masters import WANTED_TYPES as ORDER_CAPTURE_TYPES
from query_api.projections.dimensions import DIMENSIONS
from query_api.projections.kpis import KPIS
from query_api.projections.schemes import SCHEMES
from query_api.projections.stock import STOCK
from scheme_engine.handlers.evaluation import SCHEME_ENGINE_TYPES
from sellthrough_contracts import type_names
from sellthrough_devstack.services import ServiceProcess
from stock_ledger.handlers.ledger import LEDGER_TYPES
from tests.conftest import Infra, Tokens
from tests.support.brand import event, invoice, order, renumbered, stock_count
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
UNICODE_REASON = "दुकान बंद — propriétaire absent"

CONSUMED_BY = {
    "order_capture": ORDER_CAPTURE_TYPES,
    "stock_ledger": LEDGER_TYPES,
    "scheme_engine": SCHEME_ENGINE_TYPES,
    # As query_api.main subscribes its projection consumer.
    "query_api": type_names((*DIMENSIONS.consumes, *STOCK.consumes, *SCHEMES.consumes, *KPIS.consumes)),
}
"""Each service's schema and the event types its consumer applies."""


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    names = ["order-capture", "stock-ledger", "scheme-engine", "query-api"]
    # The non-ASCII no-order reason a rep posts below must be one of the brand's (order-capture validates it).
    reasons = {"SELLTHROUGH_NO_ORDER_REASONS": json.dumps(["shop closed", UNICODE_REASON])}
    with running_with_reference_data(infra, tokens, names, reasons) as running:
        yield running


def priced(raw: dict[str, Any], *prices: object) -> dict[str, Any]:
    lines = [{**line, "unit_price": price} for line, price in zip(raw["payload"]["lines"], prices, strict=True)]
    return {**raw, "payload": {**raw["payload"], "lines": lines}}


def scheme(valid_from: str, valid_to: str) -> dict[str, Any]:
    return event(
        "SchemeLaunched",
        {
            "scheme_id": f"SCH-{uuid.uuid4().hex[:8]}",
            "name": "Offre spéciale — चाय",
            "valid_from": valid_from,
            "valid_to": valid_to,
            "benefit": {"kind": "percent_discount", "percent": "2.50"},
            "applies_to": {"brands": ["Sunrise Tea"]},
        },
        occurred_at=NOW - timedelta(days=20),
    )


def outlet(outlet_id: str, name: str) -> dict[str, Any]:
    return event(
        "OutletRegistered",
        {
            "outlet_id": outlet_id,
            "name": name,
            "distributor_id": "D1",
            "channel": "grocery",
            "outlet_class": "B",
            "location": {"lat": 28.61, "lon": 77.21, "accuracy_m": 4},
        },
    )


def visit(reason: str) -> dict[str, Any]:
    return event(
        "VisitRecorded",
        {
            "visit_id": f"V-{uuid.uuid4().hex[:8]}",
            "outlet_id": "O2",
            "distributor_id": "D1",
            "rep_id": "REP-1",
            "productive": False,
            "no_order_reason": reason,
        },
        actor="REP-1",
        occurred_at=NOW - timedelta(days=3),
    )


def post(services: dict[str, ServiceProcess], tokens: Tokens, who: str, events: list[dict[str, Any]]) -> list[Any]:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events", json={"events": events}, headers=tokens.header(who), timeout=30
    )
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


async def test_every_accepted_event_is_applied_by_every_consumer_and_nothing_is_dead_lettered(
    services: dict[str, ServiceProcess], tokens: Tokens, infra: Infra
) -> None:
    old_order = priced(order("O1", [("S1", 3), ("S3", 2)], occurred_at=NOW - timedelta(days=44)), "10.5000", 7.25)
    recent_order = priced(order("O2", [("S2", 6)], occurred_at=NOW - timedelta(hours=2)), "4")
    recent_order["source"] = "téléphone-٤٢ 📱"
    admin_order = order("O4", [("S3", 1)], occurred_at=NOW - timedelta(days=399))
    must_accept = {
        "rep1": [old_order, recent_order, visit(UNICODE_REASON)],
        "connector": [
            invoice("2000-01-01", occurred_at=NOW - timedelta(days=399), quantity=40, unit_price="8.0000"),
            stock_count("2000-01-01T00:00:00Z", distributor_id="D3", sku_id="S2", quantity=12),
        ],
        "admin": [
            admin_order,
            outlet("O-UNI", "किराना स्टोर — Gerät ü ☕"),
            scheme((NOW - timedelta(days=30)).isoformat(), "9999-12-30T00:00:00Z"),
        ],
    }
    nul_source = {**order("O1", [("S1", 1)]), "source": "phone\x00"}
    string_quantity = order("O2", [("S1", 1)])
    string_quantity["payload"]["lines"][0]["quantity"] = "12"
    must_reject = {
        "rep1": [
            (order("O1", [("S1", 1)], occurred_at=NOW - timedelta(days=46)), "occurred_too_early"),
            (nul_source, "invalid_fields"),
            (string_quantity, "invalid_fields"),
            (renumbered(old_order, lines=[{"sku_id": "S1", "quantity": 1, "unit_price": "10.50"}]), "order_id_reused"),
            (priced(old_order, "10.51", "7.25"), "event_id_reused"),
        ],
        "connector": [
            (
                invoice("2026-01-01", occurred_at=NOW - timedelta(days=401), quantity=40, unit_price="8.0000"),
                "occurred_too_early",
            ),
            (stock_count("0001-01-01T00:00:00Z", distributor_id="D3", sku_id="S2", quantity=12), "invalid_fields"),
        ],
        "admin": [
            ({**order("O1", [("S1", 1)]), "occurred_at": "0001-01-01T00:00:00Z"}, "occurred_too_early"),
            ({**order("O1", [("S1", 1)]), "occurred_at": "0001-01-01T03:00:00+05:30"}, "occurred_too_early"),
            ({**order("O1", [("S1", 1)]), "actor": "admin\x1b[2J"}, "invalid_fields"),
            (scheme((NOW - timedelta(days=5)).isoformat(), "9999-12-31T23:00:00-05:00"), "invalid_fields"),
            (scheme("0001-01-01T00:00:00Z", (NOW + timedelta(days=5)).isoformat()), "invalid_fields"),
        ],
    }
    must_be_duplicate = {
        "rep1": [
            priced(old_order, "10.5", "7.2500"),  # a retry, decimals spelt otherwise
            renumbered(old_order),  # the same order under a new event_id
        ],
    }

    accepted: list[dict[str, Any]] = []
    for who, events in must_accept.items():
        results = post(services, tokens, who, events)
        assert [r["status"] for r in results] == ["accepted"] * len(events), results
        accepted += events
    for who, cases in must_reject.items():
        results = post(services, tokens, who, [raw for raw, _ in cases])
        assert [(r["status"], r["reason"]) for r in results] == [("rejected", reason) for _, reason in cases], results
    for who, events in must_be_duplicate.items():
        results = post(services, tokens, who, events)
        assert [r["status"] for r in results] == ["duplicate"] * len(events), results

    conn = await asyncpg.connect(infra.database_url)
    try:
        for schema, types in CONSUMED_BY.items():
            expected = {uuid.UUID(e["event_id"]) for e in accepted if e["event_type"] in types}
            assert expected, f"no accepted event reaches {schema}: the test would prove nothing"

            async def applied(schema: str = schema, expected: set[uuid.UUID] = expected) -> set[uuid.UUID]:
                rows = await conn.fetch(
                    f"SELECT event_id FROM {schema}.processed_events WHERE event_id = ANY($1::uuid[])", list(expected)
                )
                return {row["event_id"] for row in rows}

            def complete(found: set[uuid.UUID], expected: set[uuid.UUID] = expected) -> bool:
                return found == expected

            await eventually(applied, complete, timeout=60, what=f"accepted events applied by {schema}")
        # Applied, not only claimed: a handler failure leaves the id in processed_events and the event in
        # dead_letters. Give the consumers a moment to finish any batch still in flight.
        await asyncio.sleep(2)
        for schema in CONSUMED_BY:
            dead = await conn.fetch(f"SELECT event_type, reason, detail FROM {schema}.dead_letters")
            assert [dict(row) for row in dead] == [], schema
        orders = [e for e in accepted if e["event_type"] == "OrderCaptured"]
        order_ids = [uuid.UUID(e["event_id"]) for e in orders]
        assert await conn.fetchval(
            "SELECT count(DISTINCT event_id) FROM stock_ledger.movements WHERE event_id = ANY($1::uuid[])", order_ids
        ) == len(orders)
        assert await conn.fetchval(
            "SELECT count(*) FROM scheme_engine.orders WHERE event_id = ANY($1::uuid[])", order_ids
        ) == len(orders)
    finally:
        await conn.close()

    # The sales read covers at most 366 days: the orders inside them.
    since = (NOW - timedelta(days=365)).date()
    lines = [
        line
        for o in orders
        if datetime.fromisoformat(o["occurred_at"]).date() >= since
        for line in o["payload"]["lines"]
    ]
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        params = {"level": "national", "from": str(since), "to": str(NOW.date())}
        body = (await client.get("/v1/sales", params=params, timeout=10)).json()
    assert Decimal(body["total"]["value"]) == sum(Decimal(str(line["unit_price"])) * line["quantity"] for line in lines)
    assert body["total"]["units"] == sum(line["quantity"] for line in lines)
