"""Stock alerts as days pass, not only as events arrive.

Demand is averaged over a window that slides with the clock, so a (distributor, SKU) no event touches can still
cross a norm: a distributor whose retailers stop ordering has stock that stops moving (overstock), and the
warning matters most exactly when nothing more arrives. A background job evaluates every position again at a
fixed interval and emits the alert changes it finds, as the ledger consumer does for the positions it touches.

Each chunk of positions is evaluated in a transaction of its own under an exclusive advisory lock that the
ledger consumer takes shared before it evaluates (adapters/store.py, LOCK_FOR_EVALUATION): the two never read the
same alert state and both emit its change. Several instances may run the job; the second finds nothing left to change.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime

import asyncpg

from sellthrough_runtime.app import Job
from stock_ledger.adapters.store import PgLedgerStore
from stock_ledger.domain.positions import Key, TouchedPositions
from stock_ledger.handlers.ledger import evaluate_positions
from stock_ledger.settings import StockLedgerSettings

log = logging.getLogger(__name__)


async def reevaluate_alerts(
    pool: asyncpg.Pool, settings: StockLedgerSettings, as_of: datetime | None = None, chunk_size: int = 500
) -> int:
    """Evaluate every position's alerts with demand up to `as_of` (now); returns how many alert changes were
    emitted."""
    after: Key = ("", "")
    changes = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            store = PgLedgerStore(conn)
            keys = await store.next_position_keys(after, chunk_size)
            if not keys:
                return changes
            await store.lock_for_reevaluation()
            catalogue = await store.catalogue(sorted({sku for _, sku in keys}))
            events = await evaluate_positions(
                store, keys, TouchedPositions(), catalogue, settings, as_of or datetime.now(UTC)
            )
            await store.append_to_outbox(events)
        changes += sum(1 for e in events if e.event_type.startswith("StockAlert"))
        after = keys[-1]


def alert_reevaluation_job(pool: asyncpg.Pool, settings: StockLedgerSettings) -> Job:
    """Re-evaluates every position once at start and then every `alert_reevaluation_seconds`."""

    async def run() -> None:
        while True:
            started = time.perf_counter()
            changes = await reevaluate_alerts(pool, settings)
            log.info(
                "stock alerts re-evaluated",
                extra={"alert_changes": changes, "seconds": round(time.perf_counter() - started, 3)},
            )
            await asyncio.sleep(settings.alert_reevaluation_seconds)

    return run
