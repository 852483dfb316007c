"""A background check that query-api's book stock and the stock ledger's on-hand agree, as a metric.

The two services apply the same events at their own pace, so a difference seen once may be one of them catching
up. A position counts as differing only when it shows the same difference at two checks in a row while neither
side changed it between them (same ledger position version, same book): then no event is in flight for it.
"""

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg

from query_api.reads.reconciliation import PositionReconciliation, reconcile
from sellthrough_runtime.app import Job
from sellthrough_runtime.metrics import RECONCILIATION_DIFFERENCE_UNITS, RECONCILIATION_POSITIONS_DIFFERING

log = logging.getLogger(__name__)

Seen = dict[tuple[str, str], tuple[int, int | None, int]]
"""Per differing position: (difference, ledger version, book) at the last check."""


def stable_differences(
    previous: Seen, positions: list[PositionReconciliation]
) -> tuple[Seen, list[PositionReconciliation]]:
    """This check's differing positions, and those that differed the same way at the previous check."""
    seen: Seen = {}
    stable = []
    for p in positions:
        if p.ledger_difference == 0:
            continue
        key, state = (p.distributor_id, p.sku_id), (p.ledger_difference, p.ledger_version, p.book_now)
        seen[key] = state
        if previous.get(key) == state:
            stable.append(p)
    return seen, stable


async def check_once(pool: asyncpg.Pool, previous: Seen) -> tuple[Seen, list[PositionReconciliation]]:
    """Compare every position once, export the stable differences as metrics; returns what to pass next time."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        positions = await reconcile(conn, now, now, None, None)
    seen, stable = stable_differences(previous, positions)
    RECONCILIATION_POSITIONS_DIFFERING.set(len(stable))
    RECONCILIATION_DIFFERENCE_UNITS.set(sum(abs(p.ledger_difference) for p in stable))
    for p in stable[:20]:
        log.warning(
            "book stock differs from the stock ledger",
            extra={
                "distributor_id": p.distributor_id,
                "sku_id": p.sku_id,
                "book": p.book_now,
                "ledger_on_hand": p.ledger_on_hand,
            },
        )
    return seen, stable


def reconciliation_check_job(pool: asyncpg.Pool, interval_seconds: float) -> Job:
    async def run() -> None:
        previous: Seen = {}
        while True:
            previous, _ = await check_once(pool, previous)
            await asyncio.sleep(interval_seconds)

    return run
