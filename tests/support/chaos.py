"""Fault injection for the chaos tests: a steady field load that retries like a phone does, and the
reconciliation that proves every accepted order was applied exactly once everywhere."""

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from sellthrough_runtime.kafka import client_security
from tests.support.brand import OUTLETS, SKUS, order

RETRYABLE_STATUSES = frozenset({503})
"""What a client may see while a part is down: 'try again', never a 500."""

CONSUMER_SCHEMAS = ("query_api", "stock_ledger", "scheme_engine")
"""Every service that consumes OrderCaptured, by its Postgres schema."""


@dataclass
class FieldLoad:
    """Posts batches of orders at a steady pace, as phones syncing: each batch is retried with the same
    event ids until order-capture answers 200, so an event is in the system exactly when its final status
    is accepted or duplicate (accepted before a crash hid the answer)."""

    base_url: str
    headers: dict[str, str]
    batch_size: int = 20
    interval_s: float = 0.1
    seed: int = 7
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Event id -> order, for every order the system holds."""
    statuses: Counter[str] = field(default_factory=Counter)
    """HTTP statuses and connection failures seen, to prove no 5xx other than 503."""
    batches: list[list[dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next_batch(self) -> list[dict[str, Any]]:
        """New orders, some of them offline ones from the last three days posted out of order."""
        now = datetime.now(UTC)
        batch = []
        for _ in range(self.batch_size):
            offline = self._rng.random() < 0.3
            occurred_at = now - timedelta(minutes=self._rng.uniform(4 * 60, 72 * 60) if offline else 1)
            skus = self._rng.sample(list(SKUS), self._rng.randint(1, 3))
            lines = [(sku, self._rng.randint(1, 6)) for sku in skus]
            batch.append(order(self._rng.choice(list(OUTLETS)), lines, occurred_at=occurred_at))
        self._rng.shuffle(batch)
        return batch

    async def post(self, client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> dict[str, Any]:
        while True:
            try:
                response = await client.post(
                    f"{self.base_url}/v1/events", json={"events": batch}, headers=self.headers, timeout=30
                )
            except httpx.TransportError as error:  # order-capture is down or restarting
                self.statuses[type(error).__name__] += 1
                await asyncio.sleep(0.2)
                continue
            self.statuses[str(response.status_code)] += 1
            if response.status_code in RETRYABLE_STATUSES:
                assert response.headers["content-type"] == "application/problem+json", response.text
                await asyncio.sleep(0.2)
                continue
            assert response.status_code == 200, f"{response.status_code}: {response.text}"
            return dict(response.json())

    async def send(self, client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
        body = await self.post(client, batch)
        for event, result in zip(batch, body["results"], strict=True):
            assert result["status"] in ("accepted", "duplicate"), result
            self.orders[event["event_id"]] = event
        self.batches.append(batch)

    async def duplicate_storm(self, client: httpx.AsyncClient, batches: int = 5) -> None:
        """Re-send earlier batches: every event must come back a duplicate and change nothing."""
        for batch in self._rng.sample(self.batches, min(batches, len(self.batches))):
            body = await self.post(client, batch)
            assert body["duplicate"] == len(batch), body

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                await self.send(client, self.next_batch())
                if len(self.batches) % 25 == 0:
                    await self.duplicate_storm(client)
                await asyncio.sleep(self.interval_s)

    def server_errors(self) -> dict[str, int]:
        return {status: n for status, n in self.statuses.items() if status.startswith("5") and status != "503"}


def expected_stock(invoiced: dict[tuple[str, str], int], orders: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Book stock per (distributor, SKU): invoiced minus ordered, recomputed independently of the ledger."""
    stock = defaultdict(int, invoiced)
    for o in orders:
        for line in o["payload"]["lines"]:
            stock[(o["payload"]["distributor_id"], line["sku_id"])] -= line["quantity"]
    return dict(stock)


async def applied_counts(database_url: str, event_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per consuming service: (how many of `event_ids` it recorded as applied, its dead letters)."""
    ids = [uuid.UUID(e) for e in event_ids]
    conn = await asyncpg.connect(database_url)
    try:
        counts = {}
        for schema in CONSUMER_SCHEMAS:
            applied = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.processed_events WHERE event_id = ANY($1::uuid[])", ids
            )
            dead = await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters")
            counts[schema] = (applied, dead)
        return counts
    finally:
        await conn.close()


_UNPUBLISHED = "SELECT " + " + ".join(
    f"(SELECT count(*) FROM {schema}.outbox WHERE seq > (SELECT published_through FROM {schema}.outbox_progress))"
    for schema in ("order_capture", "stock_ledger", "scheme_engine")
)
"""Rows past each relay's high-water mark, in every service's outbox."""


async def unpublished(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(_UNPUBLISHED))
    finally:
        await conn.close()


async def where_missing(
    bootstrap_servers: str, database_url: str, event_ids: list[str], logs: dict[str, Path] | None = None
) -> str:
    """For a failure report: per consumer, the events it did not apply, where their copies sit in the trade topic
    now (partition, offset, outbox generation), where the consumer stands on those partitions, the layout of
    the topic (runs of offsets by generation, so gaps show) and the warnings in the consumer's log."""
    copies: dict[str, list[tuple[int, int, str]]] = {}
    reader = AIOKafkaConsumer(
        "sellthrough.trade.v1",
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_security(),
    )
    await reader.start()
    try:
        while batch := await reader.getmany(timeout_ms=2000):
            for records in batch.values():
                for record in records:
                    event_id = orjson.loads(record.value)["event_id"] if record.value else None
                    generation = dict(record.headers).get("outbox_generation", b"-").decode()
                    copies.setdefault(str(event_id), []).append((record.partition, record.offset, generation))
    finally:
        await reader.stop()
    conn = await asyncpg.connect(database_url)
    layout: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for partition, offset, generation in (copy for event_copies in copies.values() for copy in event_copies):
        layout[partition].append((offset, generation))
    lines = [f"trade partition {p}: {offset_runs(layout[p])}" for p in sorted(layout)]
    try:
        for schema in CONSUMER_SCHEMAS:
            applied = {str(r["event_id"]) for r in await conn.fetch(f"SELECT event_id FROM {schema}.processed_events")}
            missing = [e for e in event_ids if e not in applied]
            if not missing:
                continue
            offsets = await conn.fetch(
                f"SELECT partition, next_offset, producer_generations FROM {schema}.consumer_offsets "
                "WHERE topic = 'sellthrough.trade.v1' ORDER BY partition"
            )
            lines.append(f"{schema}: {len(missing)} missing; offsets {[tuple(r) for r in offsets]}")
            lines += [f"  {e}: {copies.get(e, [])}" for e in missing[:10]]
            log_file = (logs or {}).get(schema)
            if log_file is not None and log_file.exists():
                lines += [f"  log: {line[:300]}" for line in consumer_warnings(log_file)[-30:]]
    finally:
        await conn.close()
    return "\n".join(lines)


def offset_runs(records: list[tuple[int, str]]) -> str:
    """'0-994 order-capture:0, 1001-1455 order-capture:1': consecutive offsets of one generation as one run."""
    runs: list[list[Any]] = []
    for offset, generation in sorted(records):
        if runs and runs[-1][1] == offset - 1 and runs[-1][2] == generation:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset, generation])
    return ", ".join(f"{first}-{last} {generation}" for first, last, generation in runs)


def consumer_warnings(log_file: Path) -> list[str]:
    """Lines of a service log about its consumers going wrong or seeking (JSON lines; others kept as they are)."""
    wanted = ("WARNING", "ERROR", "partitions assigned", "rebalance")
    return [line for line in log_file.read_text(errors="replace").splitlines() if any(w in line for w in wanted)]
