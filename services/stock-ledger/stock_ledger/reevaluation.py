"""Stock alerts as days pass, not only as events arrive.

Demand is averaged over a window that slides with the clock, so a (distributor, SKU) no event touches can still
cross a norm: a distributor whose retailers stop ordering has stock that stops moving (overstock), and the
warning matters most exactly when nothing more arrives. A background job evaluates every position again at a
fixed interval and emits the alert changes it finds, as the ledger consumer does for the positions it touches.

Each chunk of positions is evaluated in a transaction of its own under an exclusive advisory lock that the
ledger consumer takes shared before it evaluates (handler.LOCK_FOR_EVALUATION): the two never read the same alert
state and both emit its change. Several instances may run the job; the second finds nothing left to change.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from sellthrough_runtime.app import Job
from sellthrough_runtime.outbox import append_to_outbox
from stock_ledger import ledger
from stock_ledger.handler import LOCK_FOR_REEVALUATION, catalogue_of, emit_positions_and_alerts
from stock_ledger.settings import StockLedgerSettings

log = logging.getLogger(__name__)


_NEXT_KEYS = """
SELECT distributor_id, sku_id FROM positions
WHERE (distributor_id, sku_id) > ($1, $2)
ORDER BY distributor_id, sku_id
LIMIT $3
"""


async def reevaluate_alerts(
    pool: asyncpg.Pool, settings: StockLedgerSettings, as_of: datetime | None = None, chunk_size: int = 500
) -> int:
    """Evaluate every position's alerts with demand up to `as_of` (now); returns how many alert changes were
    emitted."""
    window = timedelta(days=settings.demand_window_days)
    after = ("", "")
    changes = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            keys = [(r["distributor_id"], r["sku_id"]) for r in await conn.fetch(_NEXT_KEYS, *after, chunk_size)]
            if not keys:
                return changes
            await conn.execute(LOCK_FOR_REEVALUATION)
            catalogue = await catalogue_of(conn, sorted({sku for _, sku in keys}))
            events = await emit_positions_and_alerts(
                conn, keys, ledger.TouchedPositions(), catalogue, settings, window, as_of or datetime.now(UTC)
            )
            await append_to_outbox(conn, events)
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
