"""Dead letters you can act on: list them, and replay them once their cause is fixed.

Each service describes its consumers as ConsumerSpecs under the `sellthrough.consumers` entry-point group; its
own consumer job is built from the same spec, so a replay goes through exactly the handler the live consumer
uses, without any service importing another. A replay re-decodes the stored raw record and applies it through
the BatchApplier's bookkeeping (claim in processed_events, handler in a savepoint) in one transaction per
letter: on success the letter is marked resolved and kept for audit; on failure it stays open with the new
reason. A resolved letter is never replayed again, so a second replay changes nothing.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from uuid import UUID

import asyncpg
from aiokafka import ConsumerRecord

from sellthrough_runtime.applier import BatchApplier, Handler
from sellthrough_runtime.settings import ServiceSettings

ENTRY_POINT_GROUP = "sellthrough.consumers"


@dataclass(frozen=True)
class ConsumerSpec:
    """One exactly-once consumer of a service: what the live consumer and a replay both need."""

    service: str
    schema: str
    migrations_dir: Path
    group_id: str
    topics: tuple[str, ...]
    wanted_types: frozenset[str]
    settings: Callable[[], ServiceSettings]
    """The service's settings from the environment (its database URL among them)."""
    handler: Callable[[ServiceSettings], Handler]


def installed_consumers() -> dict[str, ConsumerSpec]:
    """Every installed service's consumer, by service name (one exactly-once consumer group per service)."""
    specs: dict[str, ConsumerSpec] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        spec = point.load()()
        if not isinstance(spec, ConsumerSpec):
            raise TypeError(f"entry point {point.name} of {ENTRY_POINT_GROUP} gave {spec!r}, not a ConsumerSpec")
        specs[spec.service] = spec
    return specs


@dataclass(frozen=True)
class StoredDeadLetter:
    id: int
    group_id: str
    topic: str
    partition: int
    offset: int
    event_id: UUID | None
    event_type: str | None
    reason: str
    detail: str
    received_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None


_LIST = (
    'SELECT id, group_id, topic, partition, "offset", event_id, event_type, reason, detail, received_at, attempts, '
    "last_attempt_at, resolved_at, resolution FROM dead_letters "
    "WHERE group_id = $1 AND ($2::text IS NULL OR reason = $2) AND ($3 OR resolved_at IS NULL) ORDER BY id LIMIT $4"
)


async def list_dead_letters(
    conn: asyncpg.Connection,
    group_id: str,
    *,
    reason: str | None = None,
    include_resolved: bool = False,
    limit: int | None = None,
) -> list[StoredDeadLetter]:
    """The group's dead letters, oldest first; open ones only unless include_resolved."""
    rows = await conn.fetch(
        _LIST,
        group_id,
        reason,
        include_resolved,
        limit,
    )
    return [StoredDeadLetter(**dict(row)) for row in rows]


@dataclass(frozen=True)
class ReplayResult:
    id: int
    outcome: str
    """applied, already_applied or not_wanted (now resolved); failed (still open, with `reason`); or
    already_resolved / unknown (nothing done)."""
    reason: str | None = None
    detail: str | None = None


async def replay(pool: asyncpg.Pool, applier: BatchApplier, group_id: str, letter_id: int) -> ReplayResult:
    """Apply one dead letter again, in one transaction with the update of its row."""
    async with pool.acquire() as conn, conn.transaction():
        # The row lock keeps two replays of one letter from both applying it.
        row = await conn.fetchrow(
            'SELECT topic, partition, "offset", raw, resolved_at FROM dead_letters WHERE id = $1 AND group_id = $2 '
            "FOR UPDATE",
            letter_id,
            group_id,
        )
        if row is None:
            return ReplayResult(letter_id, "unknown")
        if row["resolved_at"] is not None:
            return ReplayResult(letter_id, "already_resolved")
        raw = None if row["raw"] is None else bytes(row["raw"])
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            row["topic"], row["partition"], row["offset"], 0, 0, None, raw, None, 0, len(raw or b""), []
        )
        result = await applier.reapply(conn, record)
        if result.letter is not None:
            await conn.execute(
                "UPDATE dead_letters SET reason = $2, detail = $3, attempts = attempts + 1, last_attempt_at = now() "
                "WHERE id = $1",
                letter_id,
                result.letter.reason,
                result.letter.detail,
            )
            return ReplayResult(letter_id, "failed", result.letter.reason, result.letter.detail)
        await conn.execute(
            "UPDATE dead_letters SET attempts = attempts + 1, last_attempt_at = now(), resolved_at = now(), "
            "resolution = $2 WHERE id = $1",
            letter_id,
            result.outcome,
        )
        return ReplayResult(letter_id, result.outcome)


async def open_letter_ids(pool: asyncpg.Pool, group_id: str, reason: str | None = None) -> list[int]:
    rows = await pool.fetch(
        "SELECT id FROM dead_letters WHERE group_id = $1 AND resolved_at IS NULL AND ($2::text IS NULL OR reason = $2) "
        "ORDER BY id",
        group_id,
        reason,
    )
    return [row["id"] for row in rows]


def applier_for(spec: ConsumerSpec, pool: asyncpg.Pool, settings: ServiceSettings) -> BatchApplier:
    """The applier the live consumer of `spec` runs, for replays."""
    return BatchApplier(
        pool=pool, group_id=spec.group_id, handler=spec.handler(settings), wanted_types=spec.wanted_types
    )


def by_service(specs: Mapping[str, ConsumerSpec], services: Sequence[str] | None) -> list[ConsumerSpec]:
    """The specs of the services named (all if none), or a KeyError naming the first unknown one."""
    if not services:
        return [specs[name] for name in sorted(specs)]
    unknown = [name for name in services if name not in specs]
    if unknown:
        raise KeyError(unknown[0])
    return [specs[name] for name in services]
