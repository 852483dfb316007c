"""Builds this service's copy of the masters from the reference topic. A later occurred_at wins, so the
order in which reference events arrive does not matter."""

from collections.abc import Sequence

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.field import OutletGeotagged
from sellthrough_contracts.reference import DistributorRegistered, OutletRegistered, RepRegistered, SkuRegistered

WANTED_TYPES = frozenset(
    {"DistributorRegistered", "OutletRegistered", "OutletGeotagged", "SkuRegistered", "RepRegistered"}
)

_UPSERT_OUTLET = """
INSERT INTO known_outlets (outlet_id, distributor_id, beat_id, channel, lat, lon, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (outlet_id) DO UPDATE SET distributor_id = excluded.distributor_id, beat_id = excluded.beat_id,
    channel = excluded.channel, lat = excluded.lat, lon = excluded.lon, occurred_at = excluded.occurred_at
WHERE known_outlets.occurred_at <= excluded.occurred_at
"""
_UPSERT_GEOTAG = """
INSERT INTO outlet_geotags (outlet_id, lat, lon, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (outlet_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, occurred_at = excluded.occurred_at
WHERE outlet_geotags.occurred_at <= excluded.occurred_at
"""
_UPSERT_SKU = """
INSERT INTO known_skus (sku_id, occurred_at) VALUES ($1, $2)
ON CONFLICT (sku_id) DO UPDATE SET occurred_at = excluded.occurred_at
WHERE known_skus.occurred_at <= excluded.occurred_at
"""
_UPSERT_REP = """
INSERT INTO known_reps (rep_id, distributor_id, distributor_ids, beat_ids, occurred_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (rep_id) DO UPDATE SET distributor_id = excluded.distributor_id,
    distributor_ids = excluded.distributor_ids, beat_ids = excluded.beat_ids, occurred_at = excluded.occurred_at
WHERE known_reps.occurred_at <= excluded.occurred_at
"""
_UPSERT_DISTRIBUTOR = """
INSERT INTO known_distributors (distributor_id, occurred_at) VALUES ($1, $2)
ON CONFLICT (distributor_id) DO UPDATE SET occurred_at = excluded.occurred_at
WHERE known_distributors.occurred_at <= excluded.occurred_at
"""


async def apply_reference_events(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    outlets: list[tuple[object, ...]] = []
    skus: list[tuple[object, ...]] = []
    reps: list[tuple[object, ...]] = []
    distributors: list[tuple[object, ...]] = []
    geotags: list[tuple[object, ...]] = []
    for event in events:
        if isinstance(event, OutletRegistered):
            p = event.payload
            where = p.location
            outlets.append(
                (p.outlet_id, p.distributor_id, p.beat_id, p.channel, where.lat, where.lon, event.occurred_at)
            )
        elif isinstance(event, OutletGeotagged):
            g = event.payload
            geotags.append((g.outlet_id, g.lat, g.lon, event.occurred_at))
        elif isinstance(event, SkuRegistered):
            skus.append((event.payload.sku_id, event.occurred_at))
        elif isinstance(event, RepRegistered):
            r = event.payload
            covered = sorted({r.distributor_id, *r.also_covers_distributor_ids})
            reps.append((r.rep_id, r.distributor_id, covered, sorted(set(r.beat_ids)), event.occurred_at))
        elif isinstance(event, DistributorRegistered):
            distributors.append((event.payload.distributor_id, event.occurred_at))
    for statement, rows in (
        (_UPSERT_OUTLET, outlets),
        (_UPSERT_SKU, skus),
        (_UPSERT_REP, reps),
        (_UPSERT_DISTRIBUTOR, distributors),
        (_UPSERT_GEOTAG, geotags),
    ):
        if rows:
            await conn.executemany(statement, rows)
