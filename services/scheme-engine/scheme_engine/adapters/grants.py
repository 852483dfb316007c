"""Grants in PostgreSQL: the last emitted grant of each order per scheme (`applied`). The rules are in
domain/grants.py."""

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import asyncpg

from scheme_engine.domain.grants import Applied, Grant

_UPSERT_APPLIED = """
INSERT INTO applied (scheme_id, order_event_id, order_id, outlet_id, distributor_id, occurred_at, discount_value,
                     free_units, free_units_cost, qualifying_units, limited_by, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (scheme_id, order_event_id) DO UPDATE SET discount_value = excluded.discount_value,
    free_units = excluded.free_units, free_units_cost = excluded.free_units_cost,
    qualifying_units = excluded.qualifying_units, limited_by = excluded.limited_by, revision = excluded.revision
"""


async def applied_of(conn: asyncpg.Connection, scheme_id: str) -> dict[UUID, Applied]:
    rows = await conn.fetch("SELECT * FROM applied WHERE scheme_id = $1", scheme_id)
    return {
        row["order_event_id"]: Applied(
            Grant(
                row["scheme_id"],
                row["order_event_id"],
                row["order_id"],
                row["outlet_id"],
                row["distributor_id"],
                row["occurred_at"],
                row["qualifying_units"],
                Decimal(row["discount_value"]),
                row["free_units"],
                Decimal(row["free_units_cost"]),
                row["limited_by"],
            ),
            row["revision"],
        )
        for row in rows
    }


async def save_applied(conn: asyncpg.Connection, changed: Sequence[tuple[Grant, int]]) -> None:
    if changed:
        await conn.executemany(
            _UPSERT_APPLIED,
            [
                (
                    g.scheme_id,
                    g.order_event_id,
                    g.order_id,
                    g.outlet_id,
                    g.distributor_id,
                    g.occurred_at,
                    g.discount_value,
                    g.free_units,
                    g.free_units_cost,
                    g.qualifying_units,
                    g.limited_by,
                    revision,
                )
                for g, revision in changed
            ],
        )
