"""This service's copy of the reference data targeting needs: upserts where a later occurred_at wins."""

from collections.abc import Sequence

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import DistributorRegistered, GeographyDefined, OutletRegistered, SkuRegistered

MASTER_TYPES = frozenset({"GeographyDefined", "DistributorRegistered", "OutletRegistered", "SkuRegistered"})

_UPSERT_OUTLET = """
INSERT INTO outlets (outlet_id, distributor_id, channel, outlet_class, occurred_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (outlet_id) DO UPDATE SET distributor_id = excluded.distributor_id, channel = excluded.channel,
    outlet_class = excluded.outlet_class, occurred_at = excluded.occurred_at
WHERE outlets.occurred_at <= excluded.occurred_at
"""
_UPSERT_DISTRIBUTOR = """
INSERT INTO distributors (distributor_id, region_id, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (distributor_id) DO UPDATE SET region_id = excluded.region_id, occurred_at = excluded.occurred_at
WHERE distributors.occurred_at <= excluded.occurred_at
"""
_UPSERT_REGION = """
INSERT INTO regions (region_id, zone_id, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (region_id) DO UPDATE SET zone_id = excluded.zone_id, occurred_at = excluded.occurred_at
WHERE regions.occurred_at <= excluded.occurred_at
"""
_UPSERT_SKU = """
INSERT INTO skus (sku_id, brand, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (sku_id) DO UPDATE SET brand = excluded.brand, occurred_at = excluded.occurred_at
WHERE skus.occurred_at <= excluded.occurred_at
"""


async def upsert_masters(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    outlets, distributors, regions, skus = [], [], [], []
    for e in events:
        if isinstance(e, OutletRegistered):
            p = e.payload
            outlets.append((p.outlet_id, p.distributor_id, p.channel, p.outlet_class, e.occurred_at))
        elif isinstance(e, DistributorRegistered):
            distributors.append((e.payload.distributor_id, e.payload.region_id, e.occurred_at))
        elif isinstance(e, GeographyDefined) and e.payload.level == "region":
            # Zones carry nothing targeting needs beyond their id, which regions already name.
            regions.append((e.payload.geo_id, e.payload.parent_id, e.occurred_at))
        elif isinstance(e, SkuRegistered):
            skus.append((e.payload.sku_id, e.payload.brand, e.occurred_at))
    for sql, rows in (
        (_UPSERT_OUTLET, outlets),
        (_UPSERT_DISTRIBUTOR, distributors),
        (_UPSERT_REGION, regions),
        (_UPSERT_SKU, skus),
    ):
        if rows:
            await conn.executemany(sql, rows)
