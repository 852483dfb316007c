"""Durable acceptance: idempotency records and outbox rows in one transaction."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from order_capture.validation import KnownMasters, References, accepted_form
from sellthrough_contracts import Envelope
from sellthrough_runtime.outbox import OutboxRecord, append_records_to_outbox


@dataclass(frozen=True)
class StoreOutcome:
    accepted: set[UUID]
    duplicates: set[UUID]
    reused: set[UUID]
    """event_ids already accepted with different content: a client bug, not a retry."""


# The ids go as one JSON document rather than four text[] arguments: asyncpg encodes each element of an array
# argument with several Python-level type checks, a few hundred ids per batch.
_KNOWN_MASTERS = """
SELECT 'outlet' AS kind, outlet_id AS id, distributor_id FROM known_outlets
WHERE outlet_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'outlets'))
UNION ALL SELECT 'sku', sku_id, NULL FROM known_skus
WHERE sku_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'skus'))
UNION ALL SELECT 'rep', rep_id, NULL FROM known_reps
WHERE rep_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'reps'))
UNION ALL SELECT 'distributor', distributor_id, NULL FROM known_distributors
WHERE distributor_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'distributors'))
"""


async def load_known_masters(conn: asyncpg.Connection, refs: References) -> KnownMasters:
    """The masters `refs` names that this service knows, in one round trip."""
    rows = await conn.fetch(
        _KNOWN_MASTERS,
        {
            "outlets": list(refs.outlets),
            "skus": list(refs.skus),
            "reps": list(refs.reps),
            "distributors": list(refs.distributors),
        },
    )
    ids: dict[str, list[str]] = {"sku": [], "rep": [], "distributor": []}
    outlet_distributor = {}
    for kind, master_id, distributor_id in rows:
        if kind == "outlet":
            outlet_distributor[master_id] = distributor_id
        else:
            ids[kind].append(master_id)
    return KnownMasters(
        outlet_distributor=outlet_distributor,
        skus=frozenset(ids["sku"]),
        reps=frozenset(ids["rep"]),
        distributors=frozenset(ids["distributor"]),
    )


async def store_events(conn: asyncpg.Connection, events: list[Envelope], recorded_at: datetime) -> StoreOutcome:
    """Record each new event_id and queue its event, stamped as accepted at `recorded_at`, in the outbox,
    atomically.

    `events` must have distinct event_ids. Concurrent requests carrying the same event_id serialise on the
    primary key: exactly one of them accepts it, the others see it as a duplicate.
    """
    if not events:
        return StoreOutcome(set(), set(), set())
    forms = [accepted_form(e, recorded_at) for e in events]
    hashes = {f.event.event_id: f.content_hash for f in forms}
    async with conn.transaction():
        inserted = await conn.fetch(
            "INSERT INTO idempotency_keys (event_id, content_hash, event_type) "
            "SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            [e.event_id for e in events],
            [f.content_hash for f in forms],
            [e.event_type for e in events],
        )
        accepted = {row["event_id"] for row in inserted}
        await append_records_to_outbox(
            conn,
            [
                OutboxRecord(e.event_id, e.event_type, e.schema_version, f.key, f.value, e.causation_id)
                for f in forms
                if (e := f.event).event_id in accepted
            ],
        )
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
