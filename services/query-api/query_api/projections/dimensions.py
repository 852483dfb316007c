"""Dimension tables from reference events. Upserts keep the newest occurred_at, so arrival order is irrelevant.
When an outlet's distributor or a SKU's brand changes, the sales rollup follows (sales_rollups.py); when a SKU's list
price changes, so does the value of its retailer returns (sales.py)."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from query_api.projections.sales import revalue_returns
from query_api.projections.sales_fold import fold
from query_api.projections.sales_rollups import LOCK_FOR_REFERENCE_CHANGE, move_outlets, move_skus
from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import (
    DistributorRegistered,
    GeographyDefined,
    OutletRegistered,
    RepRegistered,
    SkuRegistered,
)

_UPSERT_ZONE = """
INSERT INTO zones (zone_id, name, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (zone_id) DO UPDATE SET name = excluded.name, occurred_at = excluded.occurred_at
WHERE zones.occurred_at <= excluded.occurred_at
"""
_UPSERT_REGION = """
INSERT INTO regions (region_id, name, zone_id, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (region_id) DO UPDATE SET name = excluded.name, zone_id = excluded.zone_id,
    occurred_at = excluded.occurred_at
WHERE regions.occurred_at <= excluded.occurred_at
"""
_UPSERT_DISTRIBUTOR = """
INSERT INTO distributors (distributor_id, name, region_id, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (distributor_id) DO UPDATE SET name = excluded.name, region_id = excluded.region_id,
    occurred_at = excluded.occurred_at
WHERE distributors.occurred_at <= excluded.occurred_at
"""
_UPSERT_OUTLET = """
INSERT INTO outlets (outlet_id, name, distributor_id, channel, outlet_class, lat, lon, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (outlet_id) DO UPDATE SET name = excluded.name, distributor_id = excluded.distributor_id,
    channel = excluded.channel, outlet_class = excluded.outlet_class, lat = excluded.lat, lon = excluded.lon,
    occurred_at = excluded.occurred_at
WHERE outlets.occurred_at <= excluded.occurred_at
"""
_UPSERT_SKU = """
INSERT INTO skus (sku_id, name, brand, category, list_price, occurred_at, units_per_case, hsn_code, gst_rate, currency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (sku_id) DO UPDATE SET name = excluded.name, brand = excluded.brand, category = excluded.category,
    list_price = excluded.list_price, occurred_at = excluded.occurred_at, units_per_case = excluded.units_per_case,
    hsn_code = excluded.hsn_code, gst_rate = excluded.gst_rate, currency = excluded.currency
WHERE skus.occurred_at <= excluded.occurred_at
"""
_BRANDS = "SELECT sku_id, brand FROM skus WHERE sku_id = ANY($1::text[])"
_DISTRIBUTORS_OF = "SELECT outlet_id, distributor_id FROM outlets WHERE outlet_id = ANY($1::text[])"
_UPSERT_REP = """
INSERT INTO reps (rep_id, name, distributor_id, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (rep_id) DO UPDATE SET name = excluded.name, distributor_id = excluded.distributor_id,
    occurred_at = excluded.occurred_at
WHERE reps.occurred_at <= excluded.occurred_at
"""

# An area's outline (dashboard map), beside its zone or region row; NULL when its latest definition has none.
_UPSERT_OUTLINE = """
INSERT INTO geo_outlines (geo_id, level, outline, occurred_at) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (geo_id) DO UPDATE SET level = excluded.level, outline = excluded.outline,
    occurred_at = excluded.occurred_at
WHERE geo_outlines.occurred_at <= excluded.occurred_at
"""


Rows = dict[str, list[tuple[object, ...]]]
"""Rows to upsert, per statement."""


def _geography(event: GeographyDefined, rows: Rows) -> None:
    p = event.payload
    if p.level == "zone":
        rows.setdefault(_UPSERT_ZONE, []).append((p.geo_id, p.name, event.occurred_at))
    else:
        rows.setdefault(_UPSERT_REGION, []).append((p.geo_id, p.name, p.parent_id, event.occurred_at))
    _outline(event, rows)


def _outline(event: GeographyDefined, rows: Rows) -> None:
    p = event.payload
    # The connection's jsonb codec (sellthrough_runtime.db) encodes the rings: [[[lon, lat], ...], ...].
    outline = [[list(position) for position in ring] for ring in p.outline] if p.outline else None
    rows.setdefault(_UPSERT_OUTLINE, []).append((p.geo_id, p.level, outline, event.occurred_at))


def _distributor(event: DistributorRegistered, rows: Rows) -> None:
    d = event.payload
    rows.setdefault(_UPSERT_DISTRIBUTOR, []).append((d.distributor_id, d.name, d.region_id, event.occurred_at))


def _outlet(event: OutletRegistered, rows: Rows) -> None:
    o = event.payload
    rows.setdefault(_UPSERT_OUTLET, []).append(
        (
            o.outlet_id,
            o.name,
            o.distributor_id,
            o.channel,
            o.outlet_class,
            o.location.lat,
            o.location.lon,
            event.occurred_at,
        )
    )


def _sku(event: SkuRegistered, rows: Rows) -> None:
    s = event.payload
    rows.setdefault(_UPSERT_SKU, []).append(
        (
            s.sku_id,
            s.name,
            s.brand,
            s.category,
            s.list_price,
            event.occurred_at,
            s.units_per_case,
            s.hsn_code,
            s.gst_rate,
            s.currency,
        )
    )


def _rep(event: RepRegistered, rows: Rows) -> None:
    r = event.payload
    rows.setdefault(_UPSERT_REP, []).append((r.rep_id, r.name, r.distributor_id, event.occurred_at))


_STEPS: Steps[Rows] = {
    GeographyDefined: _geography,
    DistributorRegistered: _distributor,
    OutletRegistered: _outlet,
    SkuRegistered: _sku,
    RepRegistered: _rep,
}


def prepare_reference_rows(events: Sequence[Envelope], _zone: ZoneInfo) -> Rows:
    return collect(_STEPS, events, Rows())


async def write_reference_rows(conn: asyncpg.Connection, prepared: Rows) -> None:
    rows = dict(prepared)  # popped below; a prepared batch may be written again after a database outage
    # Each move runs right after its own upsert and before the other's, so it reads the other dimension as the
    # rollup has it at that moment.
    skus = rows.pop(_UPSERT_SKU, [])
    await _upsert_moving_sales(conn, _UPSERT_SKU, skus, _BRANDS, move_skus)
    await revalue_returns(conn, list({str(sku[0]) for sku in skus}))
    await _upsert_moving_sales(conn, _UPSERT_OUTLET, rows.pop(_UPSERT_OUTLET, []), _DISTRIBUTORS_OF, move_outlets)
    for statement, values in rows.items():
        await conn.executemany(statement, values)


async def _upsert_moving_sales(
    conn: asyncpg.Connection,
    statement: str,
    values: list[tuple[object, ...]],
    mapping_sql: str,
    move: Callable[[asyncpg.Connection, Mapping[str, str | None]], Awaitable[None]],
) -> None:
    """Upsert outlets or SKUs (id first in each row) and move the sales whose rollup key changed with them."""
    if not values:
        return
    await conn.execute(LOCK_FOR_REFERENCE_CHANGE)
    # Queued sales first go into the rollups under the mapping they were queued with: the move below reads every
    # line of the outlet or SKU from sales_lines and moves it out of the rollup row it is in (sales_fold.py).
    await fold(conn)
    ids = list({str(v[0]) for v in values})
    before = {r[0]: r[1] for r in await conn.fetch(mapping_sql, ids)}
    await conn.executemany(statement, values)
    after = {r[0]: r[1] for r in await conn.fetch(mapping_sql, ids)}
    await move(conn, {i: before.get(i) for i in ids if i not in before or before[i] != after[i]})


DIMENSIONS = Projection("dimensions", tuple(_STEPS), prepare_reference_rows, write_reference_rows)
