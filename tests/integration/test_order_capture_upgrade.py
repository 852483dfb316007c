"""order-capture upgraded over data it accepted before orders were keyed by order id and before fingerprints
canonicalised decimals: the orders already in its outbox are captured (migration 0002), and a retry sent
exactly as before is still a duplicate. Real Postgres and broker."""

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

import order_capture
from order_capture.domain.fingerprint import legacy_content_hash
from order_capture.main import SCHEMA, create_app
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import encode_event, parse_event
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.outbox import OutboxRecord, append_records_to_outbox
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import event, order, reference_events
from tests.support.waiting import eventually

MIGRATIONS = Path(order_capture.__file__).parent / "migrations"


async def _accept_as_before(database_url: str, raw: dict[str, object]) -> None:
    """What the previous release stored for an accepted order: its idempotency row (fingerprint of the JSON
    dump as it was) and its outbox row; no captured_orders (now business_keys) row."""
    event = parse_event(raw)
    stamped = event.stamped(datetime.now(UTC))
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO idempotency_keys (event_id, content_hash, event_type) VALUES ($1, $2, $3)",
                event.event_id,
                legacy_content_hash(event),
                event.event_type,
            )
            await append_records_to_outbox(
                conn,
                [OutboxRecord(event.event_id, event.event_type, 1, event.partition_key(), encode_event(stamped), None)],
            )
    finally:
        await pool.close()


async def test_orders_accepted_before_the_upgrade_are_captured_and_exact_retries_stay_duplicates(
    infra: Infra, tokens: Tokens, tmp_path: Path
) -> None:
    before_upgrade = tmp_path / "migrations"
    before_upgrade.mkdir()
    shutil.copy(MIGRATIONS / "0001.idempotency-and-reference.sql", before_upgrade)
    await migrate(infra.database_url, SCHEMA, before_upgrade)
    old = order("O1", [("S1", 2)])
    old["payload"]["lines"][0]["unit_price"] = "10.50"  # not in its shortest form
    await _accept_as_before(infra.database_url, old)
    delivered = event(
        "OrderDelivered",
        {
            "delivery_id": "DLV-OLD",
            "order_id": old["payload"]["order_id"],
            "outlet_id": "O1",
            "distributor_id": "D1",
            "lines": [{"sku_id": "S1", "quantity": 2}],
        },
    )
    await _accept_as_before(infra.database_url, delivered)

    settings = OrderCaptureSettings(
        database_url=infra.database_url, kafka_bootstrap_servers=infra.kafka_bootstrap_servers, tokens_file=tokens.file
    )
    app = create_app(settings)  # migrates to the current schema on start
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order-capture") as client,
    ):
        assert (await post_events(client, tokens.header("admin"), reference_events())).status_code == 200
        await eventually(
            lambda: client.get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["outlets"] == 5 and r.json()["skus"] == 3 and r.json()["reps"] == 3,
            what="reference data consumed by order-capture",
        )
        same_order_new_id = {**old, "event_id": str(uuid.uuid4())}
        response = await post_events(client, tokens.header("rep1"), [old, same_order_new_id])
        delivery_again = await post_events(
            client, tokens.header("admin"), [{**delivered, "event_id": str(uuid.uuid4())}]
        )

    assert [(r["status"], r["reason"]) for r in response.json()["results"]] == [
        ("duplicate", None),
        # Its fingerprint without the event_id was never kept: it cannot be shown identical, so it is refused.
        ("rejected", "order_id_reused"),
    ]
    # Other facts accepted before the upgrade are known by their business id too.
    assert [(r["status"], r["reason"]) for r in delivery_again.json()["results"]] == [
        ("rejected", "business_id_reused")
    ]
    conn = await asyncpg.connect(infra.database_url)
    try:
        captured = await conn.fetchrow(
            "SELECT event_id, body_hash, rep_id FROM order_capture.business_keys WHERE event_type = 'OrderCaptured' "
            "AND distributor_id = 'D1' AND business_id = $1",
            old["payload"]["order_id"],
        )
    finally:
        await conn.close()
    assert captured is not None
    assert (captured["event_id"], captured["body_hash"]) == (uuid.UUID(str(old["event_id"])), None)
    # Its rep, found in the outbox by migration 0004 and moved onto its key by 0008: the ownership rule's answer.
    assert captured["rep_id"] == old["payload"]["rep_id"]
