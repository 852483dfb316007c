"""`sellthrough-rebuild` against a running query-api (real processes, embedded Postgres, Tansu): the rebuilt
schema holds exactly what the live projection held, reads answer throughout, events posted while the swap happens
are applied once by the live consumer continuing from the rebuilt offsets, a killed rebuild resumes to the same
result, and an invalid record ends in the new schema's dead letters. (Not in tests/e2e: that invalid record
would fail the check that every record on an e2e module's broker holds to its released schema.)"""

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from sellthrough_contracts.topics import TRADE
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.kafka import make_producer
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, SKUS, Totals, expected_by_level, order, retailer_invoice
from tests.support.services import running_with_reference_data
from tests.support.waiting import PIPELINE_WAIT_SECONDS, eventually

pytestmark = pytest.mark.e2e

LEVELS = ("national", "region", "distributor", "outlet")
TODAY = datetime.now(UTC).date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY + timedelta(days=1))}
LIVE, REBUILD, PREVIOUS = "query_api", "query_api_rebuild", "query_api_previous"
SWAP_LOCK = "sellthrough-projection-swap:query_api"
INVALID = b'{"event_type": "OrderCaptured", "payload": "not an order"}'


@dataclass
class Stack:
    infra: Infra
    query_api: ServiceProcess
    capture: ServiceProcess
    tokens: Tokens
    orders: list[dict[str, Any]] = field(default_factory=list)

    def post(self, events: list[dict[str, Any]]) -> None:
        response = httpx.post(
            f"{self.capture.url}/v1/events", json={"events": events}, headers=self.tokens.header("admin"), timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.text[:2000]
        self.orders += [e for e in events if e["event_type"] == "OrderCaptured"]

    def sales(self, level: str) -> dict[str, Totals]:
        response = httpx.get(
            f"{self.query_api.url}/v1/sales",
            params={**RANGE, "level": level},
            headers=self.tokens.header("analyst"),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return {r["id"]: Totals(Decimal(r["value"]), r["units"], r["lines"]) for r in response.json()["rows"]}

    def figures(self) -> dict[str, dict[str, Totals]]:
        return {level: self.sales(level) for level in LEVELS}

    def expected(self) -> dict[str, dict[str, Totals]]:
        return {level: expected_by_level(self.orders, level) for level in LEVELS}

    async def wait_applied(self) -> None:
        expected = self.expected()

        async def probe() -> dict[str, dict[str, Totals]]:
            return await asyncio.to_thread(self.figures)

        await eventually(probe, lambda got: got == expected, PIPELINE_WAIT_SECONDS, "every posted order")

    def rebuild(self, *args: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.infra.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka_bootstrap_servers,
            "SELLTHROUGH_BUSINESS_TIMEZONE": "UTC",
        }
        return subprocess.Popen(
            [sys.executable, "-m", "query_api.jobs.rebuild", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def random_orders(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        order(rng.choice(list(OUTLETS)), [(s, rng.randint(1, 9)) for s in rng.sample(list(SKUS), rng.randint(1, 3))])
        for _ in range(count)
    ]


def finished(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"rebuild exited {process.returncode}:\n{out}\n{err[-3000:]}"
    return out


async def table_counts(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename NOT LIKE '%yoyo%' "
        "AND tablename <> 'rate_limit_windows'",
        schema,
    )
    counts = {}
    for row in tables:
        name = '"' + schema + '"."' + row["tablename"] + '"'
        statement = "SELECT count(*) FROM " + name
        counts[row["tablename"]] = await conn.fetchval(statement)
    return counts


async def queues_folded(conn: asyncpg.Connection) -> None:
    """The live rollups are counted once the fold job has emptied the queues (projections/sales_fold.py, and the
    running totals' every 2 s, sales_running.py): a rebuilt schema's rollups are whole at the swap, with nothing
    queued."""
    await eventually(
        lambda: conn.fetchval(
            "SELECT (SELECT count(*) FROM query_api.sales_lines_unfolded)"
            " + (SELECT count(*) FROM query_api.sales_outlet_running_unfolded)"
        ),
        lambda n: n == 0,
        what="live queues folded",
    )


@pytest.fixture(scope="module")
def stack(infra: Infra, tokens: Tokens) -> Iterator[Stack]:
    # Reads run back to back during a rebuild: far more than an analyst's default allowance.
    extra = {"SELLTHROUGH_RATE_LIMIT_ANALYST": "1000000/minute"}
    with running_with_reference_data(infra, tokens, ["order-capture", "query-api"], extra) as services:
        running = Stack(infra, services["query-api"], services["order-capture"], tokens)
        for chunk in range(4):
            running.post(random_orders(100, seed=chunk))

        async def invalid_record() -> None:
            producer = make_producer(infra.kafka_bootstrap_servers, "test-producer")
            await producer.start()
            try:
                await producer.send_and_wait(TRADE.name, INVALID, key=b"D1")
            finally:
                await producer.stop()

        asyncio.run(invalid_record())
        asyncio.run(running.wait_applied())
        running.post(distributor_invoices(running.orders))
        asyncio.run(invoices_applied(infra))
        yield running


def distributor_invoices(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A DMS's invoices: two delivering orders (one partly), one naming an order never captured, and two without an
    order, dated before the read range so the figures compared with the orders alone stay as they are."""
    early = datetime.now(UTC) - timedelta(days=10)

    def lines(o: dict[str, Any]) -> list[tuple[str, int]]:
        return [(line["sku_id"], line["quantity"]) for line in o["payload"]["lines"]]

    first, second = orders[0], orders[1]
    return [
        retailer_invoice(first["payload"]["outlet_id"], lines(first), order_id=first["payload"]["order_id"]),
        retailer_invoice(second["payload"]["outlet_id"], lines(second)[:1], order_id=second["payload"]["order_id"]),
        retailer_invoice("O2", [("S1", 4)], order_id="ORD-NEVER-CAPTURED"),
        retailer_invoice("O1", [("S1", 3), ("S3", 2)], occurred_at=early),
        retailer_invoice("O4", [("S2", 7)], occurred_at=early),
    ]


async def invoices_applied(infra: Infra) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM query_api.sales_lines WHERE kind = 'dms'"),
            lambda n: n == 3,
            what="the distributor's invoices applied",
        )
    finally:
        await conn.close()


SALES_BY_KIND = """
SELECT kind, sum(value) AS value, sum(units) AS units, sum(delivered_units) AS delivered
FROM {schema}.sales_lines GROUP BY kind ORDER BY kind
"""


async def test_the_rebuilt_schema_holds_what_the_live_one_held_and_reads_answer_meanwhile(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM query_api.dead_letters"), lambda n: n == 1, what="live letter"
        )
        # Not projections: a subscription and the record of a delivery must survive the swap (notify/carry.py).
        await conn.execute(
            "INSERT INTO query_api.notify_subscriptions (subscription_id, role, kinds, email) "
            "VALUES ('sub-1', 'analyst', '{overstock}', 'a@b.example')"
        )
        delivered = await conn.fetchval(
            "INSERT INTO query_api.notify_deliveries (subscription_id, idempotency_key, alert_ref, body, status) "
            "VALUES ('sub-1', 'stock|overstock|D1|S1|v1', 'stock|overstock|D1|S1', '{}', 'delivered') "
            "RETURNING delivery_id"
        )
        await queues_folded(conn)
        before = await table_counts(conn, LIVE)
        by_kind = await conn.fetch(SALES_BY_KIND.format(schema=LIVE))
        assert {r["kind"] for r in by_kind} >= {"order", "adjust", "dms"}, by_kind  # the invoices in the figures
        figures = stack.figures()
        reads: list[dict[str, dict[str, Totals]]] = []
        rebuilding = stack.rebuild()
        done = threading.Event()

        def read_meanwhile() -> None:
            while not done.is_set():
                reads.append(stack.figures())

        reader = threading.Thread(target=read_meanwhile)
        reader.start()
        try:
            out = await asyncio.to_thread(finished, rebuilding)
        finally:
            done.set()
            reader.join()
        assert "swapped in as query_api" in out
        assert reads
        assert [read for read in reads if read != figures] == []
        assert await table_counts(conn, PREVIOUS) == before
        # What was applied through the live steps at the end of the rebuild may still be queued for the running
        # totals (moved every 2 s by the live fold job): every read adds the queues, the row counts wait for them.
        await queues_folded(conn)
        assert await table_counts(conn, LIVE) == before
        assert await conn.fetch(SALES_BY_KIND.format(schema=LIVE)) == by_kind
        assert stack.figures() == figures
        letter = await conn.fetchrow("SELECT reason, raw FROM query_api.dead_letters")
        assert (letter["reason"], bytes(letter["raw"])) == ("invalid_event", INVALID)
        carried = await conn.fetch("SELECT delivery_id, status FROM query_api.notify_deliveries")
        assert [tuple(r) for r in carried] == [(delivered, "delivered")]
        assert await conn.fetchval("SELECT email FROM query_api.notify_subscriptions") == "a@b.example"
        later = await conn.fetchval(
            "INSERT INTO query_api.notify_deliveries (subscription_id, idempotency_key, alert_ref, body, status) "
            "VALUES ('sub-1', 'stock|overstock|D1|S1|v2', 'stock|overstock|D1|S1', '{}', 'delivered') "
            "RETURNING delivery_id"
        )
        assert later > delivered, "the carried table's sequence continues past the carried ids"
    finally:
        await conn.close()


async def test_events_posted_while_the_swap_waits_are_applied_once_on_the_new_schema(stack: Stack) -> None:
    holder = await asyncpg.connect(stack.infra.database_url)
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        # Held as a live batch holds it: the swap waits for it, having read every record up to its watermarks.
        await holder.execute("SELECT pg_advisory_lock_shared(hashtext($1))", SWAP_LOCK)
        rebuilding = stack.rebuild()
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
            lambda waiting: waiting >= 1,
            what="the swap waiting for its lock",
        )
        second = stack.rebuild("--resume")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 3
        assert "another sellthrough-rebuild is running" in err
        late = random_orders(40, seed=99)
        stack.post(late)  # beyond the rebuild's watermarks: the live consumer's, in whichever schema is live
        await holder.execute("SELECT pg_advisory_unlock_shared(hashtext($1))", SWAP_LOCK)
        await asyncio.to_thread(finished, rebuilding)
        await stack.wait_applied()
        late_ids = [o["event_id"] for o in late]
        found = await conn.fetchval(
            "SELECT count(*) FROM query_api.processed_events WHERE event_id = ANY($1::uuid[])", late_ids
        )
        assert found == len(late)
        total = await conn.fetchval("SELECT count(*) FROM query_api.processed_events")
        distinct = await conn.fetchval("SELECT count(DISTINCT event_id) FROM query_api.processed_events")
        assert total == distinct
    finally:
        await holder.close()
        await conn.close()


async def test_a_killed_rebuild_resumes_to_the_same_result(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        await queues_folded(conn)
        before = await table_counts(conn, LIVE)
        by_kind = await conn.fetch(SALES_BY_KIND.format(schema=LIVE))
        assert {r["kind"] for r in by_kind} >= {"order", "adjust", "dms"}, by_kind  # the invoices in the figures
        figures = stack.figures()
        rebuilding = stack.rebuild("--batch-records", "5")

        async def stored_offsets() -> int:
            exists = await conn.fetchval(
                "SELECT to_regclass('query_api_rebuild.consumer_offsets') IS NOT NULL AND EXISTS "
                "(SELECT 1 FROM pg_namespace WHERE nspname = 'query_api_rebuild')"
            )
            if not exists:
                return 0
            return int(await conn.fetchval("SELECT count(*) FROM query_api_rebuild.consumer_offsets"))

        await eventually(stored_offsets, lambda rows: rows > 0, what="a first batch of the rebuild")
        rebuilding.send_signal(signal.SIGKILL)
        rebuilding.wait()

        status = stack.rebuild("--dry-run")
        assert "query_api_rebuild:" in finished(status)
        refused = stack.rebuild()
        _, err = refused.communicate(timeout=60)
        assert refused.returncode == 3
        assert "--resume" in err
        assert "--restart" in err

        out = await asyncio.to_thread(finished, stack.rebuild("--resume"))
        assert "swapped in" in out
        await queues_folded(conn)  # the live steps' lines may wait for the running totals' move (every 2 s)
        assert await table_counts(conn, LIVE) == before
        assert await table_counts(conn, PREVIOUS) == before
        assert stack.figures() == figures
        assert await conn.fetchval("SELECT count(*) FROM query_api.dead_letters WHERE reason = 'invalid_event'") == 1
    finally:
        await conn.close()
