"""Retailer returns in Postgres: stored as they arrive, read back when a scheme's grants are computed.

Only returns from a retailer (`direction` from_retailer, with an outlet) reverse scheme benefits; returns to
the company move distributor stock only, which is stock-ledger's concern. The rule is in domain/returns.py.
"""

from collections.abc import Iterable, Sequence

import asyncpg

from scheme_engine.domain.returns import RetailerReturn
from sellthrough_contracts.trade import ReturnRecorded

# The same return id sent again under another event id counts once: the first in event time is kept, so the
# row does not depend on which copy arrived first. RETURNING gives the rows this statement inserted or replaced.
_UPSERT_RETURN = """
INSERT INTO retailer_returns (distributor_id, return_id, outlet_id, occurred_at, event_id, units_by_sku)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (distributor_id, return_id) DO UPDATE SET outlet_id = excluded.outlet_id,
    occurred_at = excluded.occurred_at, event_id = excluded.event_id, units_by_sku = excluded.units_by_sku
WHERE (excluded.occurred_at, excluded.event_id) < (retailer_returns.occurred_at, retailer_returns.event_id)
RETURNING outlet_id
"""


async def store_returns(conn: asyncpg.Connection, returns: Sequence[ReturnRecorded]) -> set[str]:
    """Records the retailer returns; returns the outlets whose returns changed."""
    changed: set[str] = set()
    for ret in sorted(returns, key=lambda r: (r.occurred_at, r.event_id)):
        p = ret.payload
        units: dict[str, int] = {}
        for line in p.lines:
            units[line.sku_id] = units.get(line.sku_id, 0) + line.quantity
        row = await conn.fetchrow(
            _UPSERT_RETURN, p.distributor_id, p.return_id, p.outlet_id, ret.occurred_at, ret.event_id, units
        )
        if row is not None:
            changed.add(row["outlet_id"])
    return changed


async def schemes_granted_at(conn: asyncpg.Connection, outlet_ids: Iterable[str]) -> set[str]:
    """Schemes that granted (or granted and then revised) a benefit at any of these outlets."""
    rows = await conn.fetch(
        "SELECT DISTINCT scheme_id FROM applied WHERE outlet_id = ANY($1::text[])", sorted(set(outlet_ids))
    )
    return {row["scheme_id"] for row in rows}


async def returns_at(conn: asyncpg.Connection, outlet_ids: Iterable[str]) -> list[RetailerReturn]:
    """Every retailer return of these outlets, one per returned SKU."""
    rows = await conn.fetch(
        "SELECT distributor_id, return_id, outlet_id, occurred_at, units_by_sku FROM retailer_returns "
        "WHERE outlet_id = ANY($1::text[])",
        sorted(set(outlet_ids)),
    )
    return [
        RetailerReturn(
            row["distributor_id"], row["return_id"], row["outlet_id"], sku_id, int(units), row["occurred_at"]
        )
        for row in rows
        for sku_id, units in row["units_by_sku"].items()
    ]
