"""Builds this service's copy of the masters from the reference topic. A later occurred_at wins, so the
order in which reference events arrive does not matter."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.field import OutletGeotagged
from sellthrough_contracts.reference import DistributorRegistered, OutletRegistered, RepRegistered, SkuRegistered

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
INSERT INTO known_skus (sku_id, occurred_at, units_per_case, gst_rate) VALUES ($1, $2, $3, $4)
ON CONFLICT (sku_id) DO UPDATE SET occurred_at = excluded.occurred_at, units_per_case = excluded.units_per_case,
    gst_rate = excluded.gst_rate
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


@dataclass
class _Rows:
    outlets: list[tuple[object, ...]] = field(default_factory=list)
    skus: list[tuple[object, ...]] = field(default_factory=list)
    reps: list[tuple[object, ...]] = field(default_factory=list)
    distributors: list[tuple[object, ...]] = field(default_factory=list)
    geotags: list[tuple[object, ...]] = field(default_factory=list)


def _outlet(event: OutletRegistered, rows: _Rows) -> None:
    p = event.payload
    where = p.location
    rows.outlets.append((p.outlet_id, p.distributor_id, p.beat_id, p.channel, where.lat, where.lon, event.occurred_at))


def _geotag(event: OutletGeotagged, rows: _Rows) -> None:
    g = event.payload
    rows.geotags.append((g.outlet_id, g.lat, g.lon, event.occurred_at))


def _sku(event: SkuRegistered, rows: _Rows) -> None:
    p = event.payload
    rows.skus.append((p.sku_id, event.occurred_at, p.units_per_case, p.gst_rate))


def _rep(event: RepRegistered, rows: _Rows) -> None:
    r = event.payload
    covered = sorted({r.distributor_id, *r.also_covers_distributor_ids})
    rows.reps.append((r.rep_id, r.distributor_id, covered, sorted(set(r.beat_ids)), event.occurred_at))


def _distributor(event: DistributorRegistered, rows: _Rows) -> None:
    rows.distributors.append((event.payload.distributor_id, event.occurred_at))


_STEPS: Mapping[type[Envelope], Callable[[Any, _Rows], None]] = {
    OutletRegistered: _outlet,
    OutletGeotagged: _geotag,
    SkuRegistered: _sku,
    RepRegistered: _rep,
    DistributorRegistered: _distributor,
}

WANTED_TYPES = type_names(_STEPS)
"""What the masters consumer applies."""


async def apply_reference_events(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    rows = _Rows()
    for event in events:
        if (step := _STEPS.get(type(event))) is not None:
            step(event, rows)
    for statement, values in (
        (_UPSERT_OUTLET, rows.outlets),
        (_UPSERT_SKU, rows.skus),
        (_UPSERT_REP, rows.reps),
        (_UPSERT_DISTRIBUTOR, rows.distributors),
        (_UPSERT_GEOTAG, rows.geotags),
    ):
        if values:
            await conn.executemany(statement, values)
