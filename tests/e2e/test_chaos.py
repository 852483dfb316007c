"""Under a steady field load, kill -9 each consumer service, then order-capture (and its outbox relay), then
the broker (memory storage: every record and topic is lost), then restart PostgreSQL. Afterwards every
accepted order is applied exactly once in every projection and ledger, clients never saw a 500, and
duplicate storms and out-of-order offline batches changed nothing.

This is the short form run by `make test`; `make chaos` runs more rounds (SELLTHROUGH_CHAOS_ROUNDS).
The test owns its PostgreSQL and broker: it kills them."""

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.kafka import ensure_topics
from tests.conftest import Infra, Tokens
from tests.support.brand import DISTRIBUTORS, SKUS, Totals, event, expected_by_level, reference_events
from tests.support.chaos import CONSUMER_SCHEMAS, FieldLoad, applied_counts, expected_stock, unpublished, where_missing
from tests.support.record_check import fail_on_contract_breaches
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

ROUNDS = int(os.environ.get("SELLTHROUGH_CHAOS_ROUNDS", "1"))
LEVELS = ("national", "zone", "region", "distributor", "outlet")
TODAY = datetime.now(UTC).date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY + timedelta(days=1))}
INVOICED_UNITS = 1_000_000


@dataclass
class Parts:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    services: dict[str, ServiceProcess]
    database_url: str
    tokens: Tokens


@pytest.fixture(scope="module")
def parts(tokens: Tokens) -> Iterator[Parts]:
    directory = Path(tempfile.mkdtemp(prefix="sellthrough-chaos-"))
    directory.chmod(0o755)
    # Durable, unlike the other tests' cluster: this one is crashed (immediate stop) under load, and with
    # synchronous_commit=off a crash forgets commits already answered, orders a client was told were accepted.
    postgres = EmbeddedPostgres(directory / "data", free_port(), fast_unsafe=False)
    postgres.start()
    broker = EmbeddedBroker(free_port(), directory / "tansu.log")
    broker.start()
    asyncio.run(ensure_topics(broker.bootstrap_servers))
    infra = Infra(postgres.url, broker.bootstrap_servers, directory)
    try:
        with running_services(
            infra, tokens, ["order-capture", "query-api", "stock-ledger", "scheme-engine"]
        ) as services:
            yield Parts(postgres, broker, services, postgres.url, tokens)
        fail_on_contract_breaches(broker.bootstrap_servers)  # as the infra fixture does for the other modules
    finally:
        broker.stop()
        postgres.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)


def invoices() -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    at = datetime.now(UTC) - timedelta(days=4)
    events = [
        event(
            "PrimaryInvoiced",
            {
                "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
                "distributor_id": distributor,
                "invoice_date": at.date().isoformat(),
                "lines": [{"sku_id": sku, "quantity": INVOICED_UNITS, "unit_price": "5.00"} for sku in SKUS],
            },
            actor="erp-1",
            occurred_at=at,
        )
        for distributor in DISTRIBUTORS
    ]
    return events, {(d, s): INVOICED_UNITS for d in DISTRIBUTORS for s in SKUS}


async def get(parts: Parts, path: str, **params: str) -> dict[str, Any]:
    service = parts.services["query-api"]
    # As admin: analysts are rate limited, and this test polls hard while it waits.
    async with httpx.AsyncClient(base_url=service.url, headers=parts.tokens.header("admin")) as client:
        response = await client.get(path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def sales_by_level(parts: Parts) -> dict[str, dict[str, Totals]]:
    result = {}
    for level in LEVELS:
        body = await get(parts, "/v1/sales", level=level, **RANGE)
        result[level] = {r["id"]: Totals(Decimal(r["value"]), r["units"], r["lines"]) for r in body["rows"]}
    return result


async def stock_positions(parts: Parts) -> dict[tuple[str, str], int]:
    positions = {}
    for distributor in DISTRIBUTORS:
        body = await get(parts, "/v1/stock", level="sku", parent_id=distributor)
        positions.update({(distributor, r["id"]): r["on_hand"] for r in body["rows"]})
    return positions


async def restart(service: ServiceProcess) -> None:
    await asyncio.to_thread(service.kill)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(service.start)


async def test_killing_every_part_under_load_loses_and_doubles_nothing(parts: Parts) -> None:
    admin = parts.tokens.header("admin")
    oc = parts.services["order-capture"]
    setup = FieldLoad(oc.url, admin)
    references = reference_events()
    primary, invoiced = invoices()
    async with httpx.AsyncClient() as client:
        await setup.post(client, references)
        await asyncio.to_thread(wait_for_masters, oc.url, parts.tokens.issued["admin"].token, references)
        await setup.post(client, primary)

    load = FieldLoad(oc.url, admin)
    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop))
    try:
        for _ in range(ROUNDS):
            for name in ("query-api", "stock-ledger", "scheme-engine", "order-capture"):
                await asyncio.sleep(2)
                await restart(parts.services[name])
            await asyncio.sleep(2)
            parts.broker.kill()
            await asyncio.sleep(1)
            await asyncio.to_thread(parts.broker.start)
            await asyncio.sleep(3)
            await asyncio.to_thread(parts.postgres.stop, "immediate")
            await asyncio.sleep(2)
            await asyncio.to_thread(parts.postgres.start)
        await asyncio.sleep(2)
    finally:
        stop.set()
        await running

    orders = list(load.orders.values())
    assert len(orders) >= 200, "the load did not get going"
    assert load.server_errors() == {}, load.statuses
    assert sum(load.statuses.values()) > load.statuses["200"], "no client ever noticed an outage"
    expected_sales = {level: expected_by_level(orders, level) for level in LEVELS}
    expected_positions = expected_stock(invoiced, orders)
    order_ids = list(load.orders)

    await eventually(lambda: unpublished(parts.database_url), lambda n: n == 0, timeout=120, what="outboxes drained")
    try:
        await eventually(
            lambda: applied_counts(parts.database_url, order_ids),
            lambda counts: all(applied == len(order_ids) for applied, _ in counts.values()),
            timeout=120,
            what=f"all {len(order_ids)} orders applied in every consumer",
        )
    except AssertionError as failure:
        logs = {schema: parts.services[schema.replace("_", "-")].log_file for schema in CONSUMER_SCHEMAS}
        report = await where_missing(parts.broker.bootstrap_servers, parts.database_url, order_ids, logs)
        raise AssertionError(f"{failure}\n{report}") from None
    await eventually(lambda: sales_by_level(parts), lambda s: s == expected_sales, timeout=60, what="exact sales")
    await eventually(lambda: stock_positions(parts), lambda p: p == expected_positions, timeout=60, what="exact stock")
    counts = await applied_counts(parts.database_url, order_ids)
    assert {schema: dead for schema, (_, dead) in counts.items()} == dict.fromkeys(counts, 0)
    assert await broker_losses_noticed(parts) >= 1  # since order-capture's last restart


async def broker_losses_noticed(parts: Parts) -> int:
    """How many times order-capture's relay found the broker empty and republished its outbox."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{parts.services['order-capture'].url}/metrics")).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("sellthrough_outbox_broker_data_lost_total{")
    )
