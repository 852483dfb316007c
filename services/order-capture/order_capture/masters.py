"""Builds this service's copy of the masters from the reference topic. A later occurred_at wins, so the
order in which reference events arrive does not matter."""

from collections.abc import Sequence

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import DistributorRegistered, OutletRegistered, RepRegistered, SkuRegistered

WANTED_TYPES = frozenset({"DistributorRegistered", "OutletRegistered", "SkuRegistered", "RepRegistered"})

_UPSERT_OUTLET = """
INSERT INTO known_outlets (outlet_id, distributor_id, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (outlet_id) DO UPDATE SET distributor_id = excluded.distributor_id, occurred_at = excluded.occurred_at
WHERE known_outlets.occurred_at <= excluded.occurred_at
"""
_UPSERT_SKU = """
INSERT INTO known_skus (sku_id, occurred_at) VALUES ($1, $2)
ON CONFLICT (sku_id) DO UPDATE SET occurred_at = excluded.occurred_at
WHERE known_skus.occurred_at <= excluded.occurred_at
"""
_UPSERT_REP = """
INSERT INTO known_reps (rep_id, distributor_id, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (rep_id) DO UPDATE SET distributor_id = excluded.distributor_id, occurred_at = excluded.occurred_at
WHERE known_reps.occurred_at <= excluded.occurred_at
"""
_UPSERT_DISTRIBUTOR = """
INSERT INTO known_distributors (distributor_id, occurred_at) VALUES ($1, $2)
ON CONFLICT (distributor_id) DO UPDATE SET occurred_at = excluded.occurred_at
WHERE known_distributors.occurred_at <= excluded.occurred_at
"""


async def apply_reference_events(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    outlets, skus, reps, distributors = [], [], [], []
    for event in events:
        if isinstance(event, OutletRegistered):
            outlets.append((event.payload.outlet_id, event.payload.distributor_id, event.occurred_at))
        elif isinstance(event, SkuRegistered):
            skus.append((event.payload.sku_id, event.occurred_at))
        elif isinstance(event, RepRegistered):
            reps.append((event.payload.rep_id, event.payload.distributor_id, event.occurred_at))
        elif isinstance(event, DistributorRegistered):
            distributors.append((event.payload.distributor_id, event.occurred_at))
    for statement, rows in (
        (_UPSERT_OUTLET, outlets),
        (_UPSERT_SKU, skus),
        (_UPSERT_REP, reps),
        (_UPSERT_DISTRIBUTOR, distributors),
    ):
        if rows:
            await conn.executemany(statement, rows)
