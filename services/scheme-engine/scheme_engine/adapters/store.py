"""Scheme events, orders and earned benefits in Postgres: what the handler rebuilds its inputs from."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from scheme_engine.adapters.codec import dump_benefit, load_benefit
from scheme_engine.domain import OrderContext, OutletProfile, SchemeBenefit, SchemeEvent, SchemesState
from scheme_engine.domain.masters import MasterChanges
from sellthrough_contracts import decode_event
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured

_ORDER_CONTEXTS = """
SELECT o.body, ou.channel, ou.outlet_class, d.region_id, r.zone_id
FROM orders o
LEFT JOIN outlets ou ON ou.outlet_id = o.outlet_id
LEFT JOIN distributors d ON d.distributor_id = o.distributor_id
LEFT JOIN regions r ON r.region_id = d.region_id
WHERE o.event_id = ANY($1::uuid[])
  AND NOT EXISTS (SELECT 1 FROM cancelled_orders c WHERE c.distributor_id = o.distributor_id
                  AND c.order_id = o.order_id)
ORDER BY o.occurred_at, o.event_id
"""


async def store_scheme_events(conn: asyncpg.Connection, events: Sequence[SchemeEvent]) -> None:
    if events:
        await conn.executemany(
            "INSERT INTO scheme_events (event_id, scheme_id, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(e.event_id, e.payload.scheme_id, e.model_dump(mode="json")) for e in events],
        )


async def load_schemes(conn: asyncpg.Connection) -> SchemesState:
    """Every scheme's history: stacking looks at all schemes in effect, so all are needed (they are few)."""
    rows = await conn.fetch("SELECT body FROM scheme_events ORDER BY event_id")
    return SchemesState.from_events(_as_scheme_event(row["body"]) for row in rows)


def _as_scheme_event(body: dict[str, object]) -> SchemeEvent:
    event = decode_event(orjson.dumps(body))
    assert isinstance(event, SchemeEvent), event.event_type  # only scheme events are stored here
    return event


async def store_orders(conn: asyncpg.Connection, orders: Sequence[OrderCaptured]) -> None:
    if orders:
        await conn.executemany(
            "INSERT INTO orders (event_id, order_id, distributor_id, outlet_id, occurred_at, body) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [
                (
                    o.event_id,
                    o.payload.order_id,
                    o.payload.distributor_id,
                    o.payload.outlet_id,
                    o.occurred_at,
                    o.model_dump(mode="json"),
                )
                for o in orders
            ],
        )


async def store_cancellations(conn: asyncpg.Connection, cancels: Sequence[OrderCancelled]) -> list[UUID]:
    """Records the cancellations; returns the event ids of the orders they cancel that are already known."""
    if not cancels:
        return []
    keys = [(c.payload.distributor_id, c.payload.order_id) for c in cancels]
    await conn.executemany(
        "INSERT INTO cancelled_orders (distributor_id, order_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", keys
    )
    rows = await conn.fetch(
        "SELECT o.event_id FROM orders o JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, order_id) "
        "USING (distributor_id, order_id)",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return [row["event_id"] for row in rows]


async def orders_between(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[UUID]:
    rows = await conn.fetch("SELECT event_id FROM orders WHERE occurred_at >= $1 AND occurred_at < $2", start, end)
    return [row["event_id"] for row in rows]


_ORDERS_OF_MASTERS = """
SELECT o.event_id FROM orders o
WHERE o.occurred_at >= $5 AND o.occurred_at < $6
  AND (o.outlet_id = ANY($1::text[]) OR o.distributor_id = ANY($2::text[])
       OR o.distributor_id IN (SELECT d.distributor_id FROM distributors d WHERE d.region_id = ANY($3::text[]))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(o.body->'payload'->'lines') AS l(line)
                  WHERE l.line->>'sku_id' = ANY($4::text[])))
"""


async def orders_of_masters(
    conn: asyncpg.Connection, changes: MasterChanges, start: datetime, end: datetime
) -> list[UUID]:
    """Orders between start and end whose outlet, distributor, region or a SKU is among the changed masters."""
    rows = await conn.fetch(
        _ORDERS_OF_MASTERS,
        changes.outlet_ids,
        changes.distributor_ids,
        changes.region_ids,
        changes.sku_ids,
        start,
        end,
    )
    return [row["event_id"] for row in rows]


async def order_contexts(conn: asyncpg.Connection, event_ids: Iterable[UUID]) -> list[OrderContext]:
    """The orders (not cancelled ones) joined with the masters known now, in event-time order."""
    rows = await conn.fetch(_ORDER_CONTEXTS, list(event_ids))
    events = [decode_event(orjson.dumps(row["body"])) for row in rows]
    sku_ids = sorted({line.sku_id for e in events if isinstance(e, OrderCaptured) for line in e.payload.lines})
    brands = {
        row["sku_id"]: row["brand"]
        for row in await conn.fetch("SELECT sku_id, brand FROM skus WHERE sku_id = ANY($1::text[])", sku_ids)
    }
    contexts = []
    for row, event in zip(rows, events, strict=True):
        assert isinstance(event, OrderCaptured)
        profile = OutletProfile(row["zone_id"], row["region_id"], row["channel"], row["outlet_class"])
        contexts.append(OrderContext.from_order_captured(event, profile, brands))
    return contexts


async def distributor_orders(conn: asyncpg.Connection, distributor_id: str) -> list[OrderContext]:
    rows = await conn.fetch("SELECT event_id FROM orders WHERE distributor_id = $1", distributor_id)
    return await order_contexts(conn, [row["event_id"] for row in rows])


async def replace_earned(
    conn: asyncpg.Connection, order_event_ids: Sequence[UUID], benefits: Sequence[SchemeBenefit]
) -> set[str]:
    """Replaces what these orders earned; returns every scheme whose earned set may have changed."""
    removed = await conn.fetch(
        "DELETE FROM earned WHERE order_event_id = ANY($1::uuid[]) RETURNING scheme_id", list(order_event_ids)
    )
    if benefits:
        await conn.executemany(
            "INSERT INTO earned (scheme_id, order_event_id, occurred_at, benefit) VALUES ($1, $2, $3, $4)",
            [(b.scheme_id, b.order_event_id, b.occurred_at, dump_benefit(b)) for b in benefits],
        )
    return {row["scheme_id"] for row in removed} | {b.scheme_id for b in benefits}


async def earned_of(conn: asyncpg.Connection, scheme_id: str) -> list[SchemeBenefit]:
    rows = await conn.fetch("SELECT benefit FROM earned WHERE scheme_id = $1", scheme_id)
    return [load_benefit(row["benefit"]) for row in rows]
