"""order-capture over HTTP (in process), against the real embedded Postgres and Tansu broker."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from order_capture.main import create_app
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts.topics import TRADE
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import order, reference_events
from tests.support.waiting import eventually

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def client(infra: Infra, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    settings = OrderCaptureSettings(
        database_url=infra.database_url,
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        tokens_file=tokens.file,
        max_body_bytes=2 * 1024 * 1024,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order-capture") as http,
    ):
        response = await post_events(http, tokens.header("admin"), reference_events())
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(reference_events())
        await eventually(
            lambda: http.get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["outlets"] == 5 and r.json()["skus"] == 3 and r.json()["reps"] == 3,
            what="reference data consumed by order-capture",
        )
        yield http


async def outbox_count(db: asyncpg.Connection, event_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM order_capture.outbox WHERE event_id = $1", uuid.UUID(event_id)))


async def test_accepted_events_are_stored_with_idempotency_record_and_published(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection, infra: Infra
) -> None:
    orders = [order("O1", [("S1", 2), ("S3", 1)]), order("O2", [("S2", 5)])]
    response = await post_events(client, tokens.header("rep1"), orders)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 0)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    for o in orders:
        assert await outbox_count(db, o["event_id"]) == 1
        assert (
            await db.fetchval(
                "SELECT count(*) FROM order_capture.idempotency_keys WHERE event_id = $1", uuid.UUID(o["event_id"])
            )
            == 1
        )
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM order_capture.outbox "
            "WHERE seq > (SELECT published_through FROM order_capture.outbox_progress)"
        ),
        lambda pending: pending == 0,
        what="outbox drained by the relay",
    )
    published = await _read_topic(infra, TRADE.name)
    ours = {r.value["event_id"]: r for r in published if r.value["event_id"] in {o["event_id"] for o in orders}}
    assert set(ours) == {o["event_id"] for o in orders}
    record = ours[orders[0]["event_id"]]
    assert record.key == b"D1", "orders are keyed by distributor so one distributor's events stay in order"
    assert dict(record.headers)["event_type"] == b"OrderCaptured"
    assert record.value["recorded_at"] is not None


async def test_resending_a_batch_returns_duplicates_and_publishes_nothing_new(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection
) -> None:
    orders = [order("O1", [("S1", 1)]), order("O2", [("S2", 3)])]
    first = await post_events(client, tokens.header("rep1"), orders)
    outbox_before = await db.fetchval("SELECT count(*) FROM order_capture.outbox")

    again = await post_events(client, tokens.header("rep1"), orders)

    assert first.json()["accepted"] == 2
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert await db.fetchval("SELECT count(*) FROM order_capture.outbox") == outbox_before


async def test_a_repeat_inside_one_batch_is_a_duplicate(client: httpx.AsyncClient, tokens: Tokens) -> None:
    one = order("O1", [("S1", 1)])
    response = await post_events(client, tokens.header("rep1"), [one, one])
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "duplicate"]


async def test_reusing_an_event_id_for_different_content_is_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    original = order("O1", [("S1", 1)])
    changed = {
        **original,
        "payload": {**original["payload"], "lines": [{"sku_id": "S1", "quantity": 9, "unit_price": "10.50"}]},
    }
    assert (await post_events(client, tokens.header("rep1"), [original])).json()["accepted"] == 1

    response = await post_events(client, tokens.header("rep1"), [changed])

    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert result["reason"] == "event_id_reused"


def _with_line(quantity: object) -> dict[str, object]:
    bad = order("O1", [("S1", 1)])
    bad["payload"]["lines"][0]["quantity"] = quantity
    return bad


def _with_payload(**changes: object) -> dict[str, object]:
    bad = order("O1", [("S1", 1)])
    bad["payload"].update(changes)
    return bad


@pytest.mark.parametrize(
    ("bad_event", "reason", "mentions"),
    [
        pytest.param(_with_line(0), "invalid_fields", "lines.0.quantity", id="zero-quantity"),
        pytest.param(_with_line(-3), "invalid_fields", "lines.0.quantity", id="negative-quantity"),
        pytest.param(_with_line("two"), "invalid_fields", "lines.0.quantity", id="quantity-not-a-number"),
        pytest.param(_with_payload(lines=[]), "invalid_fields", "lines", id="no-lines"),
        pytest.param(
            {**order("O1", [("S1", 1)]), "occurred_at": "2026-01-01T10:00:00"},
            "invalid_fields",
            "occurred_at",
            id="timestamp-without-zone",
        ),
        pytest.param(
            order("O1", [("S1", 1)], occurred_at=datetime.now(UTC) + timedelta(hours=2)),
            "occurred_in_future",
            "device clock",
            id="future-timestamp",
        ),
        pytest.param(
            {**order("O1", [("S1", 1)]), "event_type": "OrderTeleported"},
            "unknown_event_type",
            "OrderTeleported",
            id="unknown-type",
        ),
        pytest.param(_with_payload(outlet_id="O-404"), "unknown_outlet", "O-404", id="unknown-outlet"),
        pytest.param(
            order("O1", [("S1", 1)])
            | {
                "payload": order("O1", [("S1", 1)])["payload"]
                | {"lines": [{"sku_id": "S-404", "quantity": 1, "unit_price": "1.00"}]}
            },
            "unknown_sku",
            "S-404",
            id="unknown-sku",
        ),
        pytest.param(
            _with_payload(distributor_id="D2"), "outlet_not_served_by_distributor", "D1", id="wrong-distributor"
        ),
        pytest.param("just a string", "not_an_object", "JSON object", id="not-an-object"),
        pytest.param(
            {**order("O1", [("S1", 1)]), "event_id": "not-a-uuid"}, "invalid_fields", "event_id", id="bad-event-id"
        ),
    ],
)
async def test_each_bad_event_is_rejected_with_its_reason_and_good_ones_still_accepted(
    client: httpx.AsyncClient, tokens: Tokens, bad_event: object, reason: str, mentions: str
) -> None:
    good = order("O2", [("S2", 1)])
    response = await post_events(client, tokens.header("rep1"), [bad_event, good])  # type: ignore[list-item]

    assert response.status_code == 200, response.text
    bad_result, good_result = response.json()["results"]
    assert bad_result["status"] == "rejected"
    assert bad_result["reason"] == reason
    assert mentions in bad_result["detail"]
    assert good_result["status"] == "accepted"


async def _raw_post(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, content_type: str = "application/json"
) -> httpx.Response:
    return await client.post("/v1/events", content=content, headers={**headers, "content-type": content_type})


@pytest.mark.parametrize(
    ("content", "content_type", "status", "problem"),
    [
        pytest.param(b'{"events": [{', "application/json", 400, "invalid-json", id="broken-json"),
        pytest.param(b'[{"event_type": "OrderCaptured"}]', "application/json", 422, "invalid-batch", id="bare-array"),
        pytest.param(b'{"events": []}', "application/json", 422, "empty-batch", id="empty"),
        pytest.param(
            b'{"events": [' + b",".join([b"{}"] * 1001) + b"]}",
            "application/json",
            413,
            "batch-too-large",
            id="1001-events",
        ),
        pytest.param(
            b'{"events": ["' + b"x" * (3 * 1024 * 1024) + b'"]}',
            "application/json",
            413,
            "payload-too-large",
            id="body-too-large",
        ),
        pytest.param(b"events=1", "application/x-www-form-urlencoded", 415, "unsupported-media-type", id="form"),
    ],
)
async def test_request_level_errors_are_problem_json(
    client: httpx.AsyncClient, tokens: Tokens, content: bytes, content_type: str, status: int, problem: str
) -> None:
    response = await _raw_post(client, tokens.header("rep1"), content, content_type)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/" + problem)
    assert response.json()["status"] == status


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["missing", "unknown", "wrong-scheme", "empty"],
)
async def test_requests_without_a_valid_token_get_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/v1/events", json={"events": [order("O1", [("S1", 1)])]}, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("token", "event_factory", "mentions"),
    [
        pytest.param("rep1", lambda: order("O3", [("S1", 1)]), "actor 'REP-2'", id="rep-posting-as-another-rep"),
        pytest.param(
            "rep1",
            lambda: (
                {**order("O1", [("S1", 1)]), "actor": "REP-1"}
                | {"payload": order("O1", [("S1", 1)])["payload"] | {"rep_id": "REP-2"}}
            ),
            "payload.rep_id",
            id="rep-naming-another-rep-in-payload",
        ),
        pytest.param(
            "connector",
            lambda: {**order("O1", [("S1", 1)]), "actor": "erp-1"},
            "may not post OrderCaptured",
            id="connector-posting-field-event",
        ),
        pytest.param(
            "rep1",
            lambda: reference_events()[0] | {"actor": "REP-1"},
            "may not post GeographyDefined",
            id="rep-posting-reference-data",
        ),
        pytest.param("analyst", lambda: order("O1", [("S1", 1)]), "may not post", id="analyst-writing"),
    ],
)
async def test_tokens_may_only_post_their_own_kind_of_event_as_themselves(
    client: httpx.AsyncClient, tokens: Tokens, db: asyncpg.Connection, token: str, event_factory, mentions: str
) -> None:
    allowed = order("O1", [("S1", 1)])
    forbidden = event_factory()
    response = await post_events(client, tokens.header(token), [allowed, forbidden])

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert mentions in response.json()["detail"]
    assert 1 in [v["index"] for v in response.json()["violations"]]
    assert await outbox_count(db, allowed["event_id"]) == 0, "a forbidden batch is refused whole"


async def test_connector_posts_primary_invoices_as_itself(client: httpx.AsyncClient, tokens: Tokens) -> None:
    invoice = {
        "event_id": str(uuid.uuid4()),
        "event_type": "PrimaryInvoiced",
        "actor": "erp-1",
        "source": "sap-export",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {
            "invoice_number": "INV-1",
            "distributor_id": "D1",
            "invoice_date": "2026-11-20",
            "lines": [{"sku_id": "S1", "quantity": 240, "unit_price": "8.00"}],
        },
    }
    response = await post_events(client, tokens.header("connector"), [invoice])
    assert response.json()["results"][0]["status"] == "accepted"


async def test_unknown_routes_and_methods_answer_problem_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    wrong_method = await client.get("/v1/events")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    assert (wrong_method.status_code, wrong_method.headers["content-type"]) == (405, PROBLEM)


class _Record:
    def __init__(self, key: bytes | None, value: dict[str, object], headers: list[tuple[str, bytes]]) -> None:
        self.key, self.value, self.headers = key, value, headers


async def _read_topic(infra: Infra, topic: str) -> list[_Record]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        await consumer.seek_to_beginning()
        records: list[_Record] = []
        while batch := await consumer.getmany(timeout_ms=1000):
            records += [_Record(r.key, orjson.loads(r.value), list(r.headers)) for rs in batch.values() for r in rs]
        return records
    finally:
        await consumer.stop()
