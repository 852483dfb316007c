"""Retention: rows kept only to recognise a retry or a replayed copy are deleted once no retry or copy can come.

Each service runs one pruning job (`Retention.run`, started by app.py): every `interval` it deletes, table by
table, the rows older than their window in bounded statements (`batch_rows` at most each, `max_batches` per
table and round), so a backlog of old rows is worked off over rounds and never holds long locks or a long
transaction. Processes of one service (HTTP workers, replicas) take turns per table on an advisory lock.
The windows, why each is safe and what they cost on disk: docs/retention.md."""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from sellthrough_runtime.metrics import RETENTION_PRUNED
from sellthrough_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneRule:
    """One table's retention: `statement` deletes at most $2 rows older than the cutoff $1 (a timestamptz)."""

    table: str
    window: timedelta
    statement: str


# Published rows only (at or below the relay's mark), in a range of seqs from the oldest row: a scan for old rows
# by time would read the whole outbox each round once nothing is old enough. Rows are created in seq order, so
# the oldest rows are the first seqs; a young row among them only waits for the next rounds.
_OUTBOX = """
DELETE FROM outbox
WHERE seq >= (SELECT min(seq) FROM outbox) AND seq < (SELECT min(seq) FROM outbox) + $2
  AND seq <= (SELECT published_through FROM outbox_progress) AND created_at < $1
"""

# The BRIN index on applied_at (migration 0007) finds the old ranges without reading the young ones.
_PROCESSED_EVENTS = """
DELETE FROM processed_events
WHERE ctid = ANY(ARRAY(SELECT ctid FROM processed_events WHERE applied_at < $1 LIMIT $2))
"""


def outbox_rule(window: timedelta) -> PruneRule:
    """Published outbox rows: kept `window` for a republish after a broker lost its data."""
    return PruneRule("outbox", window, _OUTBOX)


def processed_events_rule(window: timedelta) -> PruneRule:
    """Consumers' applied event ids: kept while a copy of the event could still be read again."""
    return PruneRule("processed_events", window, _PROCESSED_EVENTS)


def runtime_rules(settings: ServiceSettings) -> list[PruneRule]:
    """The rules of the runtime's own tables, as the settings configure them."""
    rules = [outbox_rule(timedelta(days=settings.retention_outbox_days))]
    if settings.retention_processed_events_days is not None:
        rules.append(processed_events_rule(timedelta(days=settings.retention_processed_events_days)))
    return rules


_TAKE_TURN = "SELECT pg_try_advisory_xact_lock(hashtext($1))"


class Retention:
    def __init__(
        self,
        pool: asyncpg.Pool,
        service: str,
        rules: Sequence[PruneRule],
        *,
        interval_seconds: float = 300.0,
        batch_rows: int = 10_000,
        max_batches: int = 100,
    ) -> None:
        self._pool = pool
        self._service = service
        self._rules = list(rules)
        self._interval_seconds = interval_seconds
        self._batch_rows = batch_rows
        self._max_batches = max_batches

    async def run(self) -> None:
        """Prune every `interval_seconds` until cancelled (a failure ends the job, which its supervisor restarts)."""
        while True:
            await self.prune_once()
            await asyncio.sleep(self._interval_seconds)

    async def prune_once(self) -> dict[str, int]:
        """One round: rows deleted per table."""
        pruned = {}
        for rule in self._rules:
            pruned[rule.table] = await self._prune(rule)
        return pruned

    async def _prune(self, rule: PruneRule) -> int:
        started = time.monotonic()
        total = 0
        for _ in range(self._max_batches):
            async with self._pool.acquire() as conn, conn.transaction():
                # The window is measured on the database's clock, as the rows' timestamps are.
                if not await conn.fetchval(_TAKE_TURN, f"sellthrough-retention:{rule.table}"):
                    break  # another process of the service prunes this table now
                cutoff = await conn.fetchval("SELECT now() - $1::interval", rule.window)
                deleted = int((await conn.execute(rule.statement, cutoff, self._batch_rows)).split()[-1])
            total += deleted
            RETENTION_PRUNED.labels(self._service, rule.table).inc(deleted)
            if deleted < self._batch_rows:
                break
        if total:
            log.info(
                "retention pruned rows",
                extra={
                    "table": rule.table,
                    "rows": total,
                    "window_days": rule.window.days,
                    "s": time.monotonic() - started,
                },
            )
        return total
