"""This service's copy of the reference data targeting needs: upserts where a later occurred_at wins.

`upsert_masters` reports which masters actually changed, because an order evaluated before its outlet's
channel or its SKU's brand was known must be evaluated again once they are (see handlers/evaluation.py).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from scheme_engine.domain.masters import MasterChanges
from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import DistributorRegistered, GeographyDefined, OutletRegistered, SkuRegistered

# unnest() inserts every row in one round trip; rows are de-duplicated per key first, because one statement
# may not update the same row twice.
_UPSERT_OUTLETS = """
INSERT INTO outlets (outlet_id, distributor_id, channel, outlet_class, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
ON CONFLICT (outlet_id) DO UPDATE SET distributor_id = excluded.distributor_id, channel = excluded.channel,
    outlet_class = excluded.outlet_class, occurred_at = excluded.occurred_at
WHERE outlets.occurred_at <= excluded.occurred_at
RETURNING outlet_id AS id
"""
_UPSERT_DISTRIBUTORS = """
INSERT INTO distributors (distributor_id, region_id, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (distributor_id) DO UPDATE SET region_id = excluded.region_id, occurred_at = excluded.occurred_at
WHERE distributors.occurred_at <= excluded.occurred_at
RETURNING distributor_id AS id
"""
_UPSERT_REGIONS = """
INSERT INTO regions (region_id, zone_id, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (region_id) DO UPDATE SET zone_id = excluded.zone_id, occurred_at = excluded.occurred_at
WHERE regions.occurred_at <= excluded.occurred_at
RETURNING region_id AS id
"""
_UPSERT_SKUS = """
INSERT INTO skus (sku_id, brand, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (sku_id) DO UPDATE SET brand = excluded.brand, occurred_at = excluded.occurred_at
WHERE skus.occurred_at <= excluded.occurred_at
RETURNING sku_id AS id
"""


@dataclass
class _Rows:
    """The latest row per key of each master (events are added oldest first)."""

    outlets: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    distributors: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    regions: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    skus: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _outlet(e: OutletRegistered, rows: _Rows) -> None:
    p = e.payload
    rows.outlets[p.outlet_id] = (p.outlet_id, p.distributor_id, p.channel, p.outlet_class, e.occurred_at)


def _distributor(e: DistributorRegistered, rows: _Rows) -> None:
    rows.distributors[e.payload.distributor_id] = (e.payload.distributor_id, e.payload.region_id, e.occurred_at)


def _geography(e: GeographyDefined, rows: _Rows) -> None:
    # Zones carry nothing targeting needs beyond their id, which regions already name.
    if e.payload.level == "region":
        rows.regions[e.payload.geo_id] = (e.payload.geo_id, e.payload.parent_id, e.occurred_at)


def _sku(e: SkuRegistered, rows: _Rows) -> None:
    rows.skus[e.payload.sku_id] = (e.payload.sku_id, e.payload.brand, e.occurred_at)


_STEPS: Mapping[type[Envelope], Callable[[Any, _Rows], None]] = {
    OutletRegistered: _outlet,
    DistributorRegistered: _distributor,
    GeographyDefined: _geography,
    SkuRegistered: _sku,
}
MASTER_CLASSES = tuple(_STEPS)
"""The reference events targeting needs."""


async def upsert_masters(conn: asyncpg.Connection, events: Sequence[Envelope]) -> MasterChanges:
    rows = _Rows()
    for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):  # the latest per key wins
        if (step := _STEPS.get(type(e))) is not None:
            step(e, rows)
    return MasterChanges(
        outlet_ids=await _upsert(conn, _UPSERT_OUTLETS, list(rows.outlets.values())),
        distributor_ids=await _upsert(conn, _UPSERT_DISTRIBUTORS, list(rows.distributors.values())),
        region_ids=await _upsert(conn, _UPSERT_REGIONS, list(rows.regions.values())),
        sku_ids=await _upsert(conn, _UPSERT_SKUS, list(rows.skus.values())),
    )


async def _upsert(conn: asyncpg.Connection, sql: str, rows: list[tuple[Any, ...]]) -> list[str]:
    if not rows:
        return []
    columns = [list(column) for column in zip(*rows, strict=True)]
    return [row["id"] for row in await conn.fetch(sql, *columns)]
