"""Claims of outbox rows past the relay's high-water mark (outbox_progress.published_through) that never skip a
row a transaction still in flight will commit.

Sequence numbers are taken when a row is inserted, not when its transaction commits: seq 12 may be visible while
seq 11 is still being written. Advancing the mark past 11 would lose it, so a claim stops at the first missing
seq. The missing seq is skipped only once it can no longer appear (its transaction rolled back, or the sequence
jumped after a crash): when every transaction that was running after the gap was first seen has ended."""

import logging
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

_CLAIM = """
SELECT seq, event_id, event_type, schema_version, topic, partition_key, value, trace_headers
FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2
"""

# xid8 as text both ways: asyncpg has no codec for it.
_HORIZON = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
_ENDED_BEFORE = "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8"


@dataclass
class _Gap:
    after: int
    """The row after this seq is missing while later rows are visible."""
    horizon: str | None = None
    """The next transaction id when the gap was seen again: every transaction below it that was running then has
    ended once the oldest running transaction is at or above it."""


class OutboxClaims:
    """One relay's claims; it remembers the gap it is waiting on between calls."""

    def __init__(self) -> None:
        self._gap: _Gap | None = None

    async def claim(self, conn: asyncpg.Connection, after: int, limit: int) -> list[asyncpg.Record]:
        """Up to `limit` rows following seq `after` with no seq missing between them (autocommit `conn`)."""
        gap_closed = False
        if self._gap is not None and self._gap.after == after:
            # Checked before the claim: a transaction that ended before this check and committed the missing row
            # is visible to the claim below.
            if self._gap.horizon is None:
                self._gap.horizon = await conn.fetchval(_HORIZON)
            else:
                gap_closed = bool(await conn.fetchval(_ENDED_BEFORE, self._gap.horizon))
        else:
            self._gap = None
        rows = await conn.fetch(_CLAIM, after, limit)
        expected = after + 1
        taken = 0
        for row in rows:
            if row["seq"] != expected:
                if taken or not gap_closed:
                    break
                log.info("outbox seqs never committed are skipped", extra={"from": expected, "to": row["seq"] - 1})
                gap_closed = False
            taken += 1
            expected = row["seq"] + 1
        if taken == 0 and rows:
            self._gap = self._gap if self._gap is not None else _Gap(after)
        elif taken:
            self._gap = None
        return list(rows[:taken])
