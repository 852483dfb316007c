"""The outbox relay's side: noticing that the broker lost records the relay published (a delivery below the
offset expected next on its partition, a partition ending below it), queuing every outbox row still kept again
(by moving the high-water mark back) under a raised generation, and trusting a republish only once every
published event reads back (read_back.py)."""

import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from sellthrough_runtime.kafka import ensure_topics, make_offsets_reader
from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.log_recovery.marks import generation_mark
from sellthrough_runtime.log_recovery.read_back import unreadable_events
from sellthrough_runtime.metrics import OUTBOX_BROKER_DATA_LOST, OUTBOX_RESENT

log = logging.getLogger(__name__)

PartitionRanges = dict[tuple[str, int], tuple[int, int]]
"""(topic, partition) -> (lowest offset delivered, highest + 1) in one batch."""

TakeTurn = Callable[[asyncpg.Connection], Awaitable[None]]
"""Takes the relay's turn (its advisory lock) in the connection's transaction."""


class RelayRecovery:
    """Called by the relay: `mark` for the generation header of a batch, `delivered` once it is acknowledged,
    and, when idle, `check_broker_retains` and `read_back_if_pending`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bootstrap_servers: str,
        service: str,
        take_turn: TakeTurn,
        security: KafkaSecuritySettings | None = None,
    ) -> None:
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._service = service
        self._take_turn = take_turn
        self._security = security
        self.topics_missing = False
        self.read_back_due = False
        """Set by a republish (or a resend): the relay reads back as soon as it has published everything, rather
        than at its next idle check."""
        """Set by a republish: the relay recreates missing topics (and refreshes its metadata) before sending on."""

    async def mark(self, conn: asyncpg.Connection) -> bytes:
        """The generation header value for the records sent now."""
        return generation_mark(self._service, await conn.fetchval("SELECT generation FROM outbox_generation"))

    async def delivered(self, conn: asyncpg.Connection, delivered: PartitionRanges) -> bool:
        """Whether the deliveries stand: if one landed below the offset expected next on its partition, the
        broker lost records and the outbox rows kept are queued again (False); else the ends are noted (True)."""
        expected = await conn.fetch(
            "SELECT topic, partition, next_offset FROM outbox_partitions "
            "WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [topic for topic, _ in delivered],
            [partition for _, partition in delivered],
        )
        if any(delivered[(r["topic"], r["partition"])][0] < r["next_offset"] for r in expected):
            await self._republish_retained(conn, f"deliveries landed below expected offsets: {delivered}")
            return False
        await conn.executemany(
            "INSERT INTO outbox_partitions (topic, partition, next_offset) VALUES ($1, $2, $3) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()",
            [(topic, partition, end) for (topic, partition), (_, end) in delivered.items()],
        )
        return True

    async def check_broker_retains(self, offsets: AIOKafkaConsumer) -> bool:
        """Whether every partition still ends at or beyond what this relay published to it; if one does not,
        the broker lost records and the outbox rows kept are queued again."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._take_turn(conn)
            expected = {
                TopicPartition(r["topic"], r["partition"]): r["next_offset"]
                for r in await conn.fetch("SELECT topic, partition, next_offset FROM outbox_partitions")
            }
            if not expected:
                return True
            await ensure_topics(self._bootstrap_servers, security=self._security)
            ends = await offsets.end_offsets(list(expected))
            short = {tp: (ends.get(tp), want) for tp, want in expected.items() if ends.get(tp, 0) < want}
            if short:
                # Tansu answers with the start of the partition's last record batch: read the last record
                # published before believing a partition lost records.
                present = await self._records_present({tp: want - 1 for tp, (_, want) in short.items()})
                short = {tp: ends for tp, ends in short.items() if tp not in present}
            if not short:
                return True
            lost = {str(tp): ends for tp, ends in short.items()}
            await self._republish_retained(conn, f"partitions end below what was published: {lost}")
            return False

    async def read_back_if_pending(self) -> bool | None:
        """After a republish, once every row it queued is published again: read the topics back and queue the
        published events that cannot be read to be sent again (outbox_resend; read back once more after they
        are). None if no read-back was due (or another republish came first), else whether every event was
        there.

        Only those events are sent again, under the same generation, not the whole outbox: consumers read them
        where they land, past their positions, and skip any they applied. A full republish would give them
        nothing more: the events around the unreadable ones were applied already, so those arrive out of order
        either way."""
        # Cleared while trying: after a failure (the broker down again) the next idle check tries, not every turn.
        self.read_back_due = False
        generation = await self._pool.fetchval(
            "SELECT generation FROM outbox_generation, outbox_progress "
            "WHERE read_back_pending AND published_through >= republished_through "
            # A row queued to be sent again but pruned meanwhile (retention.py) cannot be: the window is the promise.
            "AND NOT EXISTS (SELECT 1 FROM outbox_resend JOIN outbox USING (seq))"
        )
        if generation is None:
            # Still due if rows the republish queued wait to be published again.
            self.read_back_due = bool(await self._pool.fetchval("SELECT read_back_pending FROM outbox_generation"))
            return None
        missing = await unreadable_events(self._pool, self._bootstrap_servers, self._service, self._security)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._take_turn(conn)
            if await conn.fetchval("SELECT generation FROM outbox_generation") != generation:
                return None
            await conn.execute("DELETE FROM outbox_resend")  # only rows pruned before they could be sent are left
            if missing:
                await conn.execute(
                    "INSERT INTO outbox_resend SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING", missing
                )
                OUTBOX_RESENT.labels(self._service).inc(len(missing))
                self.read_back_due = True
                log.error(
                    "published events cannot be read back from the broker; sending them again",
                    extra={"service": self._service, "missing": len(missing), "first_seq": missing[0]},
                )
                return False
            await conn.execute("UPDATE outbox_generation SET read_back_pending = false")
            return True

    async def _records_present(self, offsets: dict[TopicPartition, int], timeout: float = 2.0) -> set[TopicPartition]:
        """The partitions of `offsets` that hold a record at (or beyond) the given offset."""
        reader = make_offsets_reader(
            self._bootstrap_servers, client_id=f"{self._service}-relay-check-read", security=self._security
        )
        present: set[TopicPartition] = set()
        await reader.start()
        try:
            reader.assign(list(offsets))
            for tp, offset in offsets.items():
                reader.seek(tp, offset)
            deadline = time.monotonic() + timeout
            while len(present) < len(offsets) and (left := deadline - time.monotonic()) > 0:
                fetched = await reader.getmany(timeout_ms=int(left * 1000) + 1)
                present.update(tp for tp, records in fetched.items() if any(r.offset >= offsets[tp] for r in records))
        finally:
            await reader.stop()
        return present

    async def _republish_retained(self, conn: asyncpg.Connection, why: str) -> None:
        # It cannot see how far each consumer got (services share nothing but topics): every row kept (retention
        # bounds them: retention.py), in order. Moving the mark back is one row's update, whatever the outbox holds.
        queued = await conn.fetchval(
            "WITH kept AS (SELECT min(seq) AS first FROM outbox), "
            "moved AS (SELECT published_through AS was FROM outbox_progress) "
            "UPDATE outbox_progress SET published_through = least(published_through, coalesce(kept.first - 1, "
            "published_through)), updated_at = now() FROM kept, moved RETURNING moved.was - published_through"
        )
        await conn.execute("DELETE FROM outbox_partitions")
        await conn.execute("DELETE FROM outbox_resend")  # sent again with everything else
        await conn.execute(
            "UPDATE outbox_generation SET generation = generation + 1, read_back_pending = true, "
            "republished_through = coalesce((SELECT max(seq) FROM outbox), 0)"
        )
        OUTBOX_BROKER_DATA_LOST.labels(self._service).inc()
        # The broker may have come back without the topics and still accept records for them (Tansu): the relay
        # creates them before sending the copies, which would otherwise land where no reader finds them.
        self.topics_missing = True
        self.read_back_due = True
        log.error(
            "broker lost published records; republishing the outbox",
            extra={"service": self._service, "reason": why, "requeued": queued},
        )
