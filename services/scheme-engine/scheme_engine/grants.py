"""Budget re-allocation per scheme, and the SchemeApplied corrections it implies.

The budget rule (domain/budget.py) makes an order's grant depend on every order of the scheme before it in
event time, so whenever a scheme is touched (a new or cancelled order, a late one, a new definition) the
whole scheme is re-allocated from the stored earned benefits, and only grants that differ from the last
emitted one are emitted again, with the next revision. An order that no longer earns (cancelled, or a new
definition excludes it) gets a zero grant, so readers that keep the newest revision drop it; one whose goods
came back from the retailer is granted less (domain/returns.py), again as a new revision.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from scheme_engine.domain import SchemeBenefit, SchemeHistory, allocate_budget
from scheme_engine.domain.returns import reverse_returns
from scheme_engine.returns import returns_at
from scheme_engine.store import earned_of

ZERO = Decimal("0.00")

_UPSERT_APPLIED = """
INSERT INTO applied (scheme_id, order_event_id, order_id, outlet_id, distributor_id, occurred_at, discount_value,
                     free_units, free_units_cost, qualifying_units, limited_by, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (scheme_id, order_event_id) DO UPDATE SET discount_value = excluded.discount_value,
    free_units = excluded.free_units, free_units_cost = excluded.free_units_cost,
    qualifying_units = excluded.qualifying_units, limited_by = excluded.limited_by, revision = excluded.revision
"""


@dataclass(frozen=True, slots=True)
class Grant:
    scheme_id: str
    order_event_id: UUID
    order_id: str
    outlet_id: str
    distributor_id: str
    occurred_at: datetime
    qualifying_units: int
    discount_value: Decimal
    free_units: int
    free_units_cost: Decimal
    limited_by: str | None

    @classmethod
    def of(cls, benefit: SchemeBenefit) -> "Grant":
        return cls(
            benefit.scheme_id,
            benefit.order_event_id,
            benefit.order_id,
            benefit.outlet_id,
            benefit.distributor_id,
            benefit.occurred_at,
            benefit.qualifying_units,
            benefit.discount_value,
            benefit.free_units,
            benefit.free_units_cost,
            benefit.limited_by,
        )

    @classmethod
    def nothing(cls, row: asyncpg.Record) -> "Grant":
        """What an order that no longer earns under the scheme is granted."""
        return cls(
            row["scheme_id"],
            row["order_event_id"],
            row["order_id"],
            row["outlet_id"],
            row["distributor_id"],
            row["occurred_at"],
            0,
            ZERO,
            0,
            ZERO,
            None,
        )

    @property
    def figures(self) -> tuple[object, ...]:
        return (self.qualifying_units, self.discount_value, self.free_units, self.free_units_cost, self.limited_by)


def _figures(row: asyncpg.Record) -> tuple[object, ...]:
    return (
        row["qualifying_units"],
        Decimal(row["discount_value"]),
        row["free_units"],
        Decimal(row["free_units_cost"]),
        row["limited_by"],
    )


async def granted_benefits(
    conn: asyncpg.Connection, scheme_id: str, history: SchemeHistory | None
) -> list[SchemeBenefit]:
    """The scheme's benefits as granted under its budget, less what retailer returns reversed, in event-time
    order."""
    caps = history.budget_definition if history is not None else None
    earned = await earned_of(conn, scheme_id)
    if caps is None or not earned:
        return []
    granted = allocate_budget(caps, earned)
    return reverse_returns(granted, await returns_at(conn, {b.outlet_id for b in granted}))


async def reallocate(
    conn: asyncpg.Connection, scheme_id: str, history: SchemeHistory | None
) -> list[tuple[Grant, int]]:
    """Re-allocates the scheme and stores the grants that changed; returns them with their new revision."""
    grants = {b.order_event_id: Grant.of(b) for b in await granted_benefits(conn, scheme_id, history)}
    stored = {
        row["order_event_id"]: row for row in await conn.fetch("SELECT * FROM applied WHERE scheme_id = $1", scheme_id)
    }
    for event_id, row in stored.items():
        grants.setdefault(event_id, Grant.nothing(row))
    changed: list[tuple[Grant, int]] = []
    for event_id in sorted(grants, key=lambda e: (grants[e].occurred_at, e)):
        grant, previous = grants[event_id], stored.get(event_id)
        if previous is not None and _figures(previous) == grant.figures:
            continue
        changed.append((grant, (previous["revision"] if previous is not None else 0) + 1))
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
    return changed
