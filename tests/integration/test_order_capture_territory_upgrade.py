"""order-capture upgraded to territories (migration 0004) over data it accepted before: an order already accepted
keeps its rep, so only that rep (or its distributor, or an admin) may cancel it, and outlets already known get their
beat back from the outbox. Real Postgres and broker."""

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import order_capture
from order_capture.main import SCHEMA, create_app
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import encode_event, parse_event
from sellthrough_devstack.tokens import issue_tokens
from sellthrough_runtime.auth import Role
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.outbox import OutboxRecord, append_records_to_outbox
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import MASTERS_TIME, event, order, reference_events
from tests.support.waiting import eventually

MIGRATIONS = Path(order_capture.__file__).parent / "migrations"
BEFORE_TERRITORIES = ("0001.idempotency-and-reference.sql", "0002.captured-orders.sql", "0003.business-keys.sql")


async def _accept_as_before(conn: asyncpg.Connection, raw: dict[str, Any]) -> None:
    """What the previous release stored for an accepted event: its outbox row (nothing about who owns it)."""
    accepted = parse_event(raw).stamped(datetime.now(UTC))
    await append_records_to_outbox(
        conn,
        [
            OutboxRecord(
                accepted.event_id,
                accepted.event_type,
                accepted.schema_version,
                accepted.partition_key(),
                encode_event(accepted),
                None,
            )
        ],
    )


def cancel(raw_order: dict[str, Any], actor: str) -> dict[str, Any]:
    p = raw_order["payload"]
    payload = {"order_id": p["order_id"], "outlet_id": p["outlet_id"], "distributor_id": p["distributor_id"]}
    return event("OrderCancelled", {**payload, "reason": "wrong outlet"}, actor=actor)


async def test_orders_and_beats_accepted_before_territories_are_known_after_the_upgrade(
    infra: Infra, tmp_path: Path
) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for name in BEFORE_TERRITORIES:
        shutil.copy(MIGRATIONS / name, before)
    await migrate(infra.database_url, SCHEMA, before)
    old = order("O1", [("S1", 2)], rep_id="REP-1")
    on_a_beat = event(
        "OutletRegistered",
        {
            "outlet_id": "O9",
            "name": "Shop O9",
            "distributor_id": "D1",
            "channel": "grocery",
            "outlet_class": "A",
            "location": {"lat": 28.6, "lon": 77.2, "accuracy_m": 5},
            "beat_id": "B-9",
        },
        occurred_at=MASTERS_TIME,
    )
    pool = await create_pool(infra.database_url, SCHEMA, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await _accept_as_before(conn, old)
            await _accept_as_before(conn, on_a_beat)
            # The previous release built known_outlets from the topic without the beat.
            await conn.execute(
                "INSERT INTO known_outlets (outlet_id, distributor_id, occurred_at) VALUES ('O9', 'D1', $1)",
                MASTERS_TIME,
            )
    finally:
        await pool.close()

    await migrate(infra.database_url, SCHEMA, MIGRATIONS)  # the upgrade, before any consumer could re-read the topic
    conn = await asyncpg.connect(infra.database_url)
    try:
        beat = await conn.fetchval("SELECT beat_id FROM order_capture.known_outlets WHERE outlet_id = 'O9'")
    finally:
        await conn.close()
    assert beat == "B-9"

    issued = issue_tokens(
        [("admin", Role.ADMIN, "admin"), ("rep1", Role.REP, "REP-1"), ("rep5", Role.REP, "REP-5")],
        tmp_path / "tokens.json",
        tmp_path / "tokens.env",
    )
    tokens = Tokens(tmp_path / "tokens.json", issued)
    settings = OrderCaptureSettings(
        database_url=infra.database_url, kafka_bootstrap_servers=infra.kafka_bootstrap_servers, tokens_file=tokens.file
    )
    app = create_app(settings)

    async def unpublished() -> int:
        conn = await asyncpg.connect(infra.database_url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM order_capture.outbox "
                    "WHERE seq > (SELECT published_through FROM order_capture.outbox_progress)"
                )
            )
        finally:
            await conn.close()

    # REP-5 works D1 too: only ownership can stop it cancelling REP-1's order.
    colleague = event("RepRegistered", {"rep_id": "REP-5", "name": "Rep 5", "distributor_id": "D1"})
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order-capture") as client,
    ):
        masters = [*reference_events(), colleague]
        assert (await post_events(client, tokens.header("admin"), masters)).status_code == 200
        await eventually(
            lambda: client.get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["reps"] == 4,
            what="reference data consumed by order-capture",
        )
        by_colleague = await post_events(client, tokens.header("rep5"), [cancel(old, "REP-5")])
        by_owner = await post_events(client, tokens.header("rep1"), [cancel(old, "REP-1")])
        # Leave only once the relay is idle: stopping it in the middle of a send can hang the shutdown.
        await eventually(unpublished, lambda n: n == 0, timeout=60, what="the outbox relayed")

    assert [r["reason"] for r in by_colleague.json()["results"]] == ["not_own_order"]
    assert [r["status"] for r in by_owner.json()["results"]] == ["accepted"]
