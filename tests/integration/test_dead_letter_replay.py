"""Dead letters you can act on, against the real broker and Postgres: a record the handler cannot apply is
dead-lettered without being marked processed, `sellthrough-dead-letters list` shows it, and once the cause is
fixed `replay` applies it exactly once; replaying again changes nothing."""

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner, Result

from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_contracts.topics import Topic
from sellthrough_runtime.applier import BatchApplier
from sellthrough_runtime.consumer import ExactlyOnceConsumer
from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.dead_letters import ConsumerSpec, installed_consumers
from sellthrough_runtime.dead_letters_cli import make_app
from sellthrough_runtime.kafka import ensure_topics, make_consumer, make_producer
from sellthrough_runtime.settings import ServiceSettings
from tests.conftest import Infra
from tests.support.brand import order
from tests.support.waiting import eventually

SCHEMA = "replay_test"
GROUP = "replay-test"
TOPIC = "test.dead-letter-replay"


async def catalogue_handler(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Applies orders only for SKUs in its catalogue, as a projection needing reference data would: an order of
    an unknown SKU fails until the SKU is added (a cause fixed by data). Applications have no uniqueness, so a
    double apply would show as two rows."""
    known = {r["sku_id"] for r in await conn.fetch("SELECT sku_id FROM catalogue")}
    for event in events:
        missing = {line.sku_id for line in event.payload.lines} - known  # type: ignore[attr-defined]
        if missing:
            raise LookupError(f"unknown SKUs {sorted(missing)}")
    await conn.executemany("INSERT INTO applications (event_id) VALUES ($1)", [(e.event_id,) for e in events])


@pytest.fixture(scope="module")
def migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("replay-migrations")
    (directory / "0001.replay-test.sql").write_text(
        "CREATE TABLE applications (event_id uuid NOT NULL);\n"
        "CREATE TABLE catalogue (sku_id text PRIMARY KEY);\n"
        "INSERT INTO catalogue VALUES ('S1');"
    )
    return directory


@pytest.fixture(scope="module")
async def pool(infra: Infra, migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    await migrate(infra.database_url, SCHEMA, migrations)
    pool = await create_pool(infra.database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture
def spec(infra: Infra, migrations: Path) -> ConsumerSpec:
    return ConsumerSpec(
        service="replay-test",
        schema=SCHEMA,
        migrations_dir=migrations,
        group_id=GROUP,
        topics=(TOPIC,),
        wanted_types=frozenset({"OrderCaptured"}),
        settings=lambda: ServiceSettings(database_url=infra.database_url),
        handler=lambda _settings: catalogue_handler,
    )


async def cli(spec: ConsumerSpec, *args: str) -> Result:
    """The real command line, in a thread of its own (it runs its own event loop)."""
    app = make_app(lambda: {spec.service: spec})
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)


def stamped(event: dict[str, object]) -> Envelope:
    return parse_event(event).stamped(datetime.now(UTC))


async def applications(pool: asyncpg.Pool) -> list[uuid.UUID]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applications ORDER BY event_id")]


async def processed(pool: asyncpg.Pool, group: str, event_id: uuid.UUID) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM processed_events WHERE group_id = $1 AND event_id = $2", group, event_id
        )
    )


@contextlib.asynccontextmanager
async def running_consumer(infra: Infra, pool: asyncpg.Pool) -> AsyncIterator[None]:
    consumer = ExactlyOnceConsumer(
        pool=pool,
        consumer=make_consumer(infra.kafka_bootstrap_servers, GROUP, GROUP),
        group_id=GROUP,
        topics=[TOPIC],
        handler=catalogue_handler,
        wanted_types=frozenset({"OrderCaptured"}),
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_dead_letter_is_listed_and_replayed_exactly_once_after_its_cause_is_fixed(
    infra: Infra, pool: asyncpg.Pool, spec: ConsumerSpec
) -> None:
    good = stamped(order("O1", [("S1", 1)]))
    unknown_sku = stamped(order("O1", [("S2", 3)]))
    good_after = stamped(order("O5", [("S1", 2)]))
    await ensure_topics(infra.kafka_bootstrap_servers, (Topic(TOPIC, 1, frozenset({"OrderCaptured"}), "test"),))
    producer = make_producer(infra.kafka_bootstrap_servers, "replay-test")
    await producer.start()
    try:
        for event in (good, unknown_sku):
            await producer.send_and_wait(TOPIC, encode_event(event), key=b"D1")
        await producer.send_and_wait(TOPIC, b"\x00not json", key=b"D1")
        await producer.send_and_wait(TOPIC, encode_event(good_after), key=b"D3")
    finally:
        await producer.stop()

    async with running_consumer(infra, pool):
        await eventually(lambda: applications(pool), lambda a: len(a) == 2, what="the good orders applied")
        await eventually(
            lambda: pool.fetchval("SELECT count(*) FROM dead_letters WHERE group_id = $1", GROUP),
            lambda n: n == 2,
            what="two dead letters",
        )
    assert not await processed(pool, GROUP, unknown_sku.event_id)  # else a replay would take it for applied
    letters = {r["reason"]: r["id"] for r in await pool.fetch("SELECT id, reason FROM dead_letters")}
    assert set(letters) == {"handler_failed", "invalid_event"}

    listed = await cli(spec, "list", "--service", "replay-test")
    assert listed.exit_code == 0, listed.output
    assert str(unknown_sku.event_id) in listed.output
    assert "unknown SKUs ['S2']" in listed.output
    assert "2 dead letter(s)" in listed.output
    only_invalid = await cli(spec, "list", "--reason", "invalid_event")
    assert "1 dead letter(s)" in only_invalid.output

    # Not fixed yet: the letter stays, with its attempt counted, and the command says it failed.
    early = await cli(spec, "replay", "--service", "replay-test", "--id", str(letters["handler_failed"]))
    assert early.exit_code == 1
    assert "failed again" in early.output
    row = await pool.fetchrow("SELECT attempts, resolved_at FROM dead_letters WHERE id = $1", letters["handler_failed"])
    assert (row["attempts"], row["resolved_at"]) == (1, None)
    assert unknown_sku.event_id not in await applications(pool)

    await pool.execute("INSERT INTO catalogue VALUES ('S2')")  # the fix
    fixed = await cli(spec, "replay", "--service", "replay-test", "--all")
    assert fixed.exit_code == 1  # the undecodable record cannot be fixed by data: it stays open
    assert "applied: 1" in fixed.output
    assert sorted(await applications(pool)) == sorted([good.event_id, unknown_sku.event_id, good_after.event_id])
    assert await processed(pool, GROUP, unknown_sku.event_id)
    resolved = await pool.fetchrow(
        "SELECT resolution, resolved_at, attempts FROM dead_letters WHERE id = $1", letters["handler_failed"]
    )
    assert (resolved["resolution"], resolved["attempts"]) == ("applied", 2)
    assert resolved["resolved_at"] is not None
    still_open = await pool.fetchrow(
        "SELECT reason, resolved_at FROM dead_letters WHERE id = $1", letters["invalid_event"]
    )
    assert (still_open["reason"], still_open["resolved_at"]) == ("invalid_event", None)

    # Replaying again changes nothing: the resolved letter is skipped, the open one fails as before.
    again = await cli(spec, "replay", "--service", "replay-test", "--id", str(letters["handler_failed"]))
    assert again.exit_code == 0
    assert "already resolved" in again.output
    await cli(spec, "replay", "--service", "replay-test", "--all")
    assert len(await applications(pool)) == 3
    assert (await cli(spec, "replay", "--service", "replay-test", "--id", "999999")).exit_code == 1
    audit = await cli(spec, "list", "--resolved")
    assert "resolved applied at 20" in audit.output


async def test_a_dead_letter_applied_since_by_a_redelivery_is_resolved_without_applying_it_twice(
    pool: asyncpg.Pool, spec: ConsumerSpec
) -> None:
    group = "replay-redelivered"
    applier = BatchApplier(
        pool=pool, group_id=group, handler=catalogue_handler, wanted_types=frozenset({"OrderCaptured"})
    )
    failing = stamped(order("O2", [("S3", 1)]))
    value, key = encode_event(failing), b"D1"
    record = ConsumerRecord(
        "redelivered", 0, 0, 0, 0, key, value, None, len(key), len(value), [("event_type", b"OrderCaptured")]
    )
    await applier.apply_batch([record])
    assert not await processed(pool, group, failing.event_id)

    await pool.execute("INSERT INTO catalogue VALUES ('S3')")
    await applier.apply_batch([record])  # the broker delivers it again (a rebuilt log, a reset consumer)
    assert (await applications(pool)).count(failing.event_id) == 1

    letter_id = await pool.fetchval("SELECT id FROM dead_letters WHERE group_id = $1", group)
    replayed = await cli(
        dataclasses.replace(spec, group_id=group), "replay", "-s", "replay-test", "--id", str(letter_id)
    )
    assert replayed.exit_code == 0, replayed.output
    assert await pool.fetchval("SELECT resolution FROM dead_letters WHERE id = $1", letter_id) == "already_applied"
    assert (await applications(pool)).count(failing.event_id) == 1


def test_every_service_exposes_the_consumer_it_runs_for_replays() -> None:
    specs = installed_consumers()
    assert {name: spec.group_id for name, spec in specs.items()} == {
        "order-capture": "order-capture.reference",
        "stock-ledger": "stock-ledger.ledger",
        "scheme-engine": "scheme-engine.evaluation",
        "query-api": "query-api.projections",
    }
    for spec in specs.values():
        assert callable(spec.handler(spec.settings()))
        assert (spec.migrations_dir / "..").resolve().name == spec.schema
