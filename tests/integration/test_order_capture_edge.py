"""order-capture accepts only what every consumer can apply: time windows, control characters, strict types,
decimal spellings of a retry, reused order ids, and concurrent overlapping batches. Over HTTP (in process),
against the real embedded Postgres and Tansu broker."""

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from order_capture.adapters.store import store_events
from order_capture.main import create_app
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope, parse_event
from sellthrough_runtime.app import ServiceContext
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import event, invoice, order, reference_events, renumbered, stock_count
from tests.support.waiting import eventually

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def app(infra: Infra, tokens: Tokens) -> AsyncIterator[FastAPI]:
    settings = OrderCaptureSettings(
        database_url=infra.database_url,
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        tokens_file=tokens.file,
        # These tests race thousands of a rep's events through at once; the limit weighs each (tested elsewhere).
        rate_limit_rep="unlimited",
    )
    service = create_app(settings)
    async with service.router.lifespan_context(service):
        yield service


@pytest.fixture(scope="module")
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order-capture") as http:
        response = await post_events(http, tokens.header("admin"), reference_events())
        assert response.json()["accepted"] == len(reference_events()), response.text
        await eventually(
            lambda: http.get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["outlets"] == 5 and r.json()["skus"] == 3 and r.json()["reps"] == 3,
            what="reference data consumed by order-capture",
        )
        yield http


async def results(client: httpx.AsyncClient, tokens: Tokens, who: str, events: list[Any]) -> list[dict[str, Any]]:
    response = await post_events(client, tokens.header(who), events)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def scheme(valid_from: str, valid_to: str) -> dict[str, Any]:
    return event(
        "SchemeLaunched",
        {
            "scheme_id": f"SCH-{uuid.uuid4().hex[:8]}",
            "name": "Edge scheme",
            "valid_from": valid_from,
            "valid_to": valid_to,
            "benefit": {"kind": "percent_discount", "percent": "5"},
        },
    )


def visit(productive: object, reason: str | None = None) -> dict[str, Any]:
    return event(
        "VisitRecorded",
        {
            "visit_id": f"V-{uuid.uuid4().hex[:8]}",
            "outlet_id": "O1",
            "distributor_id": "D1",
            "rep_id": "REP-1",
            "productive": productive,
            "no_order_reason": reason,
        },
        actor="REP-1",
    )


def with_price(raw: dict[str, Any], price: object, *, event_id: str | None = None) -> dict[str, Any]:
    lines = [{**raw["payload"]["lines"][0], "unit_price": price}]
    return {**raw, "event_id": event_id or raw["event_id"], "payload": {**raw["payload"], "lines": lines}}


# 1. occurred_at within the poster's window; times inside payloads within what consumers can use.


@pytest.mark.parametrize(
    ("who", "raw", "status"),
    [
        pytest.param("rep1", order("O1", [("S1", 1)], occurred_at=NOW - timedelta(days=44)), "accepted", id="rep-44d"),
        pytest.param("rep1", order("O1", [("S1", 1)], occurred_at=NOW - timedelta(days=46)), "rejected", id="rep-46d"),
        pytest.param(
            "connector", invoice("2025-11-02", occurred_at=NOW - timedelta(days=399)), "accepted", id="connector-399d"
        ),
        pytest.param(
            "connector", invoice("2025-10-30", occurred_at=NOW - timedelta(days=401)), "rejected", id="connector-401d"
        ),
        pytest.param(
            "admin", order("O1", [("S1", 1)], occurred_at=NOW - timedelta(days=399)), "accepted", id="admin-399d"
        ),
        pytest.param(
            "admin", order("O1", [("S1", 1)], occurred_at=NOW - timedelta(days=401)), "rejected", id="admin-401d"
        ),
    ],
)
async def test_occurred_at_must_be_within_the_posters_window(
    client: httpx.AsyncClient, tokens: Tokens, who: str, raw: dict[str, Any], status: str
) -> None:
    (result,) = await results(client, tokens, who, [raw])
    assert result["status"] == status, result
    if status == "rejected":
        assert result["reason"] == "occurred_too_early"
        assert "server time" in result["detail"]
        assert f"minus {45 if who == 'rep1' else 400} days" in result["detail"]


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00Z", "0001-01-01T03:00:00+05:30", "1999-12-31T23:59:59Z", "2000-01-01T04:00:00+05:30"],
)
async def test_nothing_before_2000_is_accepted_even_from_an_admin(
    client: httpx.AsyncClient, tokens: Tokens, occurred_at: str
) -> None:
    raw = {**order("O1", [("S1", 1)]), "occurred_at": occurred_at}
    (result,) = await results(client, tokens, "admin", [raw])
    assert (result["status"], result["reason"]) == ("rejected", "occurred_too_early")
    assert "2000-01-01" in result["detail"]


@pytest.mark.parametrize(
    ("who", "raw", "field"),
    [
        pytest.param("connector", stock_count("0001-01-01T00:00:00Z"), "payload.counted_at", id="count-year-1"),
        pytest.param("connector", stock_count("1999-12-31T23:00:00Z"), "payload.counted_at", id="count-1999"),
        pytest.param("connector", invoice("0001-01-01"), "payload.invoice_date", id="invoice-year-1"),
        pytest.param(
            "admin",
            scheme("0001-01-01T00:00:00Z", (NOW + timedelta(days=5)).isoformat()),
            "payload.valid_from",
            id="scheme-from-year-1",
        ),
        pytest.param(
            "admin",
            scheme((NOW - timedelta(days=5)).isoformat(), "9999-12-31T23:00:00-05:00"),
            "payload.valid_to",
            id="scheme-to-beyond-year-9999-in-utc",
        ),
        pytest.param(
            "admin",
            event("SchemeEnded", {"scheme_id": "SCH-X", "ended_at": "0001-01-01T00:00:00Z"}),
            "payload.ended_at",
            id="scheme-ended-year-1",
        ),
    ],
)
async def test_times_inside_payloads_outside_2000_to_9999_are_invalid_fields(
    client: httpx.AsyncClient, tokens: Tokens, who: str, raw: dict[str, Any], field: str
) -> None:
    (result,) = await results(client, tokens, who, [raw])
    assert (result["status"], result["reason"]) == ("rejected", "invalid_fields"), result
    assert [e["field"] for e in result["errors"]] == [field]


async def test_times_inside_payloads_at_the_edges_of_the_range_are_accepted(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    edge_cases = [
        ("connector", stock_count("2000-01-01T00:00:00Z")),
        ("connector", invoice("2000-01-01")),
        ("admin", scheme((NOW - timedelta(days=5)).isoformat(), "9999-12-30T00:00:00Z")),
    ]
    for who, raw in edge_cases:
        (result,) = await results(client, tokens, who, [raw])
        assert result["status"] == "accepted", result


# 2. Control characters, in every string field.


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"source": "phone\x0042"}, "source", id="nul-in-source"),
        pytest.param({"source": "phone\x7f"}, "source", id="del-in-source"),
        pytest.param({"actor": "admin\x01"}, "actor", id="soh-in-actor"),
        pytest.param({"source": "phone\n42"}, "source", id="newline-in-source"),
    ],
)
async def test_control_characters_in_the_envelope_are_invalid_fields(
    client: httpx.AsyncClient, tokens: Tokens, change: dict[str, str], field: str
) -> None:
    good = order("O2", [("S2", 1)])
    (bad_result, good_result) = await results(client, tokens, "admin", [{**order("O1", [("S1", 1)]), **change}, good])
    assert (bad_result["status"], bad_result["reason"]) == ("rejected", "invalid_fields")
    assert [e["field"] for e in bad_result["errors"]] == [field]
    assert "control character" in bad_result["detail"]
    assert good_result["status"] == "accepted"


async def test_control_characters_in_payload_strings_are_named_by_path(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    cancelled = event(
        "OrderCancelled",
        {"order_id": "ORD-1", "outlet_id": "O1", "distributor_id": "D1", "reason": "out\x00of stock"},
        actor="erp-1",
    )
    tabbed_visit = {**visit(False, "shop\tclosed"), "source": "tab\there"}
    (cancel_result,) = await results(client, tokens, "connector", [cancelled])
    (visit_result,) = await results(client, tokens, "rep1", [tabbed_visit])

    assert cancel_result["reason"] == "invalid_fields"
    assert [e["field"] for e in cancel_result["errors"]] == ["payload.reason"]
    assert visit_result["reason"] == "invalid_fields"
    assert sorted(e["field"] for e in visit_result["errors"]) == ["payload.no_order_reason", "source"]


async def test_non_ascii_text_without_control_characters_is_accepted(client: httpx.AsyncClient, tokens: Tokens) -> None:
    outlet = event(
        "OutletRegistered",
        {
            "outlet_id": "O-UNI",
            "name": "किराना स्टोर — Gerät ü \u2028 ☕",
            "distributor_id": "D1",
            "channel": "grocery",
            "outlet_class": "A",
            "location": {"lat": 28.6, "lon": 77.2},
        },
    )
    (result,) = await results(client, tokens, "admin", [{**outlet, "source": "téléphone-٤٢"}])
    assert result["status"] == "accepted", result


# 3. Strict types: nothing is coerced from a string.


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(order("O1", [("S1", 1)]) | {"schema_version": "1"}, "schema_version", id="version-as-string"),
        pytest.param(
            order("O1", [("S1", 1)])
            | {
                "payload": order("O1", [("S1", 1)])["payload"]
                | {"lines": [{"sku_id": "S1", "quantity": "12", "unit_price": "10.50"}]}
            },
            "payload.lines.0.quantity",
            id="quantity-as-string",
        ),
        pytest.param(
            order("O1", [("S1", 1)])
            | {
                "payload": order("O1", [("S1", 1)])["payload"]
                | {"lines": [{"sku_id": "S1", "quantity": 12.0, "unit_price": "10.50"}]}
            },
            "payload.lines.0.quantity",
            id="quantity-as-float",
        ),
        pytest.param(
            order("O1", [("S1", 1)])
            | {"payload": order("O1", [("S1", 1)])["payload"] | {"gps": {"lat": "28.6", "lon": 77.2}}},
            "payload.gps.lat",
            id="latitude-as-string",
        ),
        pytest.param(visit("true"), "payload.productive", id="bool-as-string"),
        pytest.param(visit(1), "payload.productive", id="bool-as-number"),
    ],
)
async def test_values_given_as_the_wrong_json_type_are_rejected_not_coerced(
    client: httpx.AsyncClient, tokens: Tokens, raw: dict[str, Any], field: str
) -> None:
    (result,) = await results(client, tokens, "admin", [raw])
    assert (result["status"], result["reason"]) == ("rejected", "invalid_fields"), result
    assert [e["field"] for e in result["errors"]] == [field]


@pytest.mark.parametrize("price", ["45.00", "45", 45, 45.5, "0.0001"])
async def test_money_as_a_json_string_or_number_is_accepted(
    client: httpx.AsyncClient, tokens: Tokens, price: object
) -> None:
    (result,) = await results(client, tokens, "rep1", [with_price(order("O1", [("S1", 3)]), price)])
    assert result["status"] == "accepted", result


# 4. A retry is recognised whatever the decimal spelling.


async def test_a_retry_with_another_decimal_spelling_is_a_duplicate(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection
) -> None:
    original = with_price(order("O1", [("S1", 2)]), "12.50")
    first = await results(client, tokens, "rep1", [original])
    retries = await results(
        client,
        tokens,
        "rep1",
        [with_price(original, "12.5000"), with_price(original, 12.5), with_price(original, "12.5")],
    )
    changed = await results(client, tokens, "rep1", [with_price(original, "12.51")])

    assert first[0]["status"] == "accepted"
    assert [r["status"] for r in retries] == ["duplicate"] * 3
    assert (changed[0]["status"], changed[0]["reason"]) == ("rejected", "event_id_reused")
    count = await db.fetchval(
        "SELECT count(*) FROM order_capture.outbox WHERE event_id = $1", uuid.UUID(original["event_id"])
    )
    assert count == 1


# 5. An order id is captured once per distributor, whatever its event_id.


async def orders_in_outbox(db: asyncpg.Connection, distributor_id: str, order_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM order_capture.outbox WHERE event_type = 'OrderCaptured' "
            "AND convert_from(value, 'UTF8')::jsonb -> 'payload' ->> 'order_id' = $1 "
            "AND convert_from(value, 'UTF8')::jsonb -> 'payload' ->> 'distributor_id' = $2",
            order_id,
            distributor_id,
        )
    )


async def test_an_order_id_reused_under_a_new_event_id_is_rejected_unless_identical(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection
) -> None:
    original = order("O1", [("S1", 2)])
    order_id = original["payload"]["order_id"]
    other_lines = renumbered(original, lines=[{"sku_id": "S2", "quantity": 9, "unit_price": "4.00"}])
    same_again = renumbered(original)

    first = await results(client, tokens, "rep1", [original])
    reused = await results(client, tokens, "rep1", [other_lines])
    identical = await results(client, tokens, "rep1", [same_again])
    reused_retried = await results(client, tokens, "rep1", [other_lines])

    assert first[0]["status"] == "accepted"
    assert (reused[0]["status"], reused[0]["reason"]) == ("rejected", "order_id_reused")
    assert original["event_id"] in reused[0]["detail"]
    assert order_id in reused[0]["detail"]
    assert identical[0]["status"] == "duplicate"
    assert (reused_retried[0]["status"], reused_retried[0]["reason"]) == ("rejected", "order_id_reused")
    assert await orders_in_outbox(db, "D1", order_id) == 1


async def test_an_order_id_reused_inside_one_batch_is_counted_once(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection
) -> None:
    original = order("O1", [("S1", 2)])
    order_id = original["payload"]["order_id"]
    batch = [original, renumbered(original, lines=[{"sku_id": "S3", "quantity": 1, "unit_price": "7.25"}])]
    batch.append(renumbered(original))
    # The same order number at another distributor is another order.
    elsewhere = order("O3", [("S1", 1)], rep_id="REP-2")
    elsewhere["payload"]["order_id"] = order_id

    statuses = await results(client, tokens, "admin", [*batch, elsewhere])

    assert [(r["status"], r["reason"]) for r in statuses] == [
        ("accepted", None),
        ("rejected", "order_id_reused"),
        ("duplicate", None),
        ("accepted", None),
    ]
    assert await orders_in_outbox(db, "D1", order_id) == 1
    assert await orders_in_outbox(db, "D2", order_id) == 1


def fact(event_type: str) -> tuple[dict[str, Any], dict[str, object]]:
    """An event recording a fact with a business id, and a payload change that makes it another fact's content."""
    lines: list[dict[str, object]] = [{"sku_id": "S1", "quantity": 3}]
    payloads: dict[str, tuple[dict[str, object], dict[str, object]]] = {
        "OrderCancelled": (
            {"order_id": f"ORD-{uuid.uuid4().hex[:8]}", "outlet_id": "O1", "reason": "closed"},
            {"reason": "owner refused"},
        ),
        "OrderDelivered": (
            {"delivery_id": f"DLV-{uuid.uuid4().hex[:8]}", "order_id": "ORD-X", "outlet_id": "O1", "lines": lines},
            {"lines": [{"sku_id": "S1", "quantity": 30}]},
        ),
        "ReturnRecorded": (
            {
                "return_id": f"RET-{uuid.uuid4().hex[:8]}",
                "outlet_id": "O1",
                "direction": "from_retailer",
                "reason": "damaged",
                "lines": lines,
            },
            {"lines": [{"sku_id": "S1", "quantity": 30}]},
        ),
        "StockCounted": (
            {"count_id": f"CNT-{uuid.uuid4().hex[:8]}", "counted_at": datetime.now(UTC).isoformat(), "lines": lines},
            {"lines": [{"sku_id": "S1", "quantity": 30}]},
        ),
        "StockAdjusted": (
            {
                "adjustment_id": f"ADJ-{uuid.uuid4().hex[:8]}",
                "reason": "breakage",
                "lines": [{"sku_id": "S1", "quantity_delta": -2}],
            },
            {"lines": [{"sku_id": "S1", "quantity_delta": -20}]},
        ),
        "PrimaryInvoiced": (
            {
                "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
                "invoice_date": datetime.now(UTC).date().isoformat(),
                "lines": [{"sku_id": "S1", "quantity": 3, "unit_price": "8.00"}],
            },
            {"lines": [{"sku_id": "S1", "quantity": 30, "unit_price": "8.00"}]},
        ),
    }
    payload, change = payloads[event_type]
    return event(event_type, {**payload, "distributor_id": "D1"}), change


@pytest.mark.parametrize(
    "event_type",
    ["OrderCancelled", "OrderDelivered", "ReturnRecorded", "StockCounted", "StockAdjusted", "PrimaryInvoiced"],
)
async def test_every_fact_with_a_business_id_is_counted_once_whatever_its_event_id(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection, event_type: str
) -> None:
    """A re-export under new event_ids must not move stock twice: each consumer applies events by event_id."""
    original, change = fact(event_type)
    same_again, changed = renumbered(original), renumbered(original, **change)

    statuses = await results(client, tokens, "admin", [original, same_again, changed])

    assert [(r["status"], r["reason"]) for r in statuses] == [
        ("accepted", None),
        ("duplicate", None),
        ("rejected", "business_id_reused"),
    ]
    assert original["event_id"] in statuses[2]["detail"]
    stored = await db.fetchval(
        "SELECT count(*) FROM order_capture.outbox WHERE event_type = $1 AND event_id = ANY($2::uuid[])",
        event_type,
        [uuid.UUID(e["event_id"]) for e in (original, same_again, changed)],
    )
    assert stored == 1


# 6. Overlapping batches posted concurrently, in different orders.


async def test_concurrent_overlapping_batches_in_different_orders_each_accept_every_event_once(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection
) -> None:
    rng = random.Random(7)
    for round_number in range(3):
        events = [order(rng.choice(["O1", "O2"]), [("S1", rng.randint(1, 9))]) for _ in range(500)]
        # Some orders also come again under a new event_id (a client that lost its ids): those race on the order.
        events += [renumbered(e) for e in events[:100]]
        # A phone retrying while its first request is in flight: most events of each batch are in the others too.
        batches = [rng.sample(events, 450) for _ in range(6)]

        responses = await asyncio.gather(*(post_events(client, tokens.header("rep1"), b) for b in batches))

        assert [r.status_code for r in responses] == [200] * len(batches), [r.text[:300] for r in responses]
        outcomes: dict[str, Counter[str]] = {e["event_id"]: Counter() for e in events}
        for response in responses:
            for result in response.json()["results"]:
                outcomes[result["event_id"]][result["status"]] += 1
        posted = [e for e in events if outcomes[e["event_id"]]]
        order_ids = {e["payload"]["order_id"] for e in posted}
        accepted = [e for e in posted if outcomes[e["event_id"]]["accepted"]]
        assert all(outcomes[e["event_id"]]["accepted"] <= 1 for e in posted), f"round {round_number}"
        assert all(outcomes[e["event_id"]]["rejected"] == 0 for e in posted), f"round {round_number}"
        assert sorted(e["payload"]["order_id"] for e in accepted) == sorted(order_ids), "each order accepted once"
        stored = await db.fetchval(
            "SELECT count(*) FROM order_capture.outbox WHERE event_id = ANY($1::uuid[])",
            [uuid.UUID(e["event_id"]) for e in events],
        )
        assert stored == len(order_ids)


async def test_concurrent_transactions_storing_overlapping_events_in_different_orders_do_not_deadlock(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The store itself, without HTTP parsing between requests (which staggers them in one process): several
    connections insert the same events in different orders at the same moment, as the workers of several
    processes do."""
    context = app.state.context
    assert isinstance(context, ServiceContext)
    rng = random.Random(11)
    for _ in range(3):
        events: list[Envelope] = [parse_event(order("O1", [("S1", 1)])) for _ in range(800)]
        batches = [rng.sample(events, 700) for _ in range(6)]

        async def store(batch: list[Envelope]) -> set[uuid.UUID]:
            async with context.pool.acquire() as conn:
                return (await store_events(conn, batch, datetime.now(UTC))).accepted

        accepted = await asyncio.gather(*(store(b) for b in batches))

        assert sum(len(a) for a in accepted) == len(set().union(*accepted)), "an event accepted twice"
        assert set().union(*accepted) == {e.event_id for batch in batches for e in batch}
