"""Durable acceptance: idempotency records and outbox rows in one transaction."""

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from order_capture.validation import KnownMasters, References, content_hash
from sellthrough_contracts import Envelope
from sellthrough_runtime.outbox import append_to_outbox


@dataclass(frozen=True)
class StoreOutcome:
    accepted: set[UUID]
    duplicates: set[UUID]
    reused: set[UUID]
    """event_ids already accepted with different content: a client bug, not a retry."""


async def load_known_masters(conn: asyncpg.Connection, refs: References) -> KnownMasters:
    outlets = await conn.fetch(
        "SELECT outlet_id, distributor_id FROM known_outlets WHERE outlet_id = ANY($1::text[])", list(refs.outlets)
    )
    skus = await conn.fetch("SELECT sku_id FROM known_skus WHERE sku_id = ANY($1::text[])", list(refs.skus))
    reps = await conn.fetch("SELECT rep_id FROM known_reps WHERE rep_id = ANY($1::text[])", list(refs.reps))
    distributors = await conn.fetch(
        "SELECT distributor_id FROM known_distributors WHERE distributor_id = ANY($1::text[])",
        list(refs.distributors),
    )
    return KnownMasters(
        outlet_distributor={r["outlet_id"]: r["distributor_id"] for r in outlets},
        skus=frozenset(r["sku_id"] for r in skus),
        reps=frozenset(r["rep_id"] for r in reps),
        distributors=frozenset(r["distributor_id"] for r in distributors),
    )


async def store_events(conn: asyncpg.Connection, events: list[Envelope]) -> StoreOutcome:
    """Record each new event_id and queue its event in the outbox, atomically.

    `events` must have distinct event_ids. Concurrent requests carrying the same event_id serialise on the
    primary key: exactly one of them accepts it, the others see it as a duplicate.
    """
    if not events:
        return StoreOutcome(set(), set(), set())
    hashes = {e.event_id: content_hash(e) for e in events}
    async with conn.transaction():
        inserted = await conn.fetch(
            "INSERT INTO idempotency_keys (event_id, content_hash, event_type) "
            "SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            [e.event_id for e in events],
            [hashes[e.event_id] for e in events],
            [e.event_type for e in events],
        )
        accepted = {row["event_id"] for row in inserted}
        await append_to_outbox(conn, [e for e in events if e.event_id in accepted])
        seen_before = [e.event_id for e in events if e.event_id not in accepted]
        previous = (
            await conn.fetch(
                "SELECT event_id, content_hash FROM idempotency_keys WHERE event_id = ANY($1::uuid[])", seen_before
            )
            if seen_before
            else []
        )
    reused = {r["event_id"] for r in previous if bytes(r["content_hash"]) != hashes[r["event_id"]]}
    return StoreOutcome(accepted, set(seen_before) - reused, reused)
