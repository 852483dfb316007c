"""Net secondary sales: orders, their cancellations and deliveries, and retailer returns -> the (day, outlet, SKU,
rep) sales rows and their rollups per (outlet, day), per (day, distributor) and per (day, distributor, brand).

Figures (figures/measures.py) are a function of the set of events, never of their arrival order:
- an order adds its lines (ordered, and net) on its business day, once per (distributor, order id);
- a cancellation takes the order's lines off its net, on the order's day, whether it arrives before or after the
  order; a cancellation does not count once the order has a delivery (the goods left: that is a return), as in
  the stock ledger;
- deliveries add their units to `delivered_units` of the order's row, once per (distributor, delivery id);
- a retailer return lowers net on the day it was recorded, at the outlet, valued at the SKU's list price (revalued
  when the price changes). It belongs to no rep: its rows carry the rep id ''.
The facts are kept per event (sales_orders, sales_cancellations, ...) and the order lines remember what of their
cancellation and deliveries the sales rows already hold, so a late event moves the rows by the difference.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.figures.measures import INDEX, Figures, accumulate, column_list, json_casts, sums, zero
from query_api.projections.base import Projection, Steps
from query_api.projections.freshness import NewestTimes, newest_times
from query_api.projections.sales_rollups import LOCK_FOR_SALES
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, OrderDelivered, ReturnRecorded
from sellthrough_runtime.db import json_rows

NO_REP = ""
"""The rep id of the rows a retailer return makes: returns are not taken by a rep."""

# One statement keeps sales_daily and its rollups (migration 0006) in step: each data-modifying CTE runs once.
_UPSERT_SALES = f"""
WITH batch AS (
    SELECT (r->>0)::date AS day, r->>1 AS outlet_id, r->>2 AS sku_id, r->>3 AS rep_id, {json_casts(4)}
    FROM jsonb_array_elements($1::text::jsonb) AS r
), by_sku AS (
    INSERT INTO sales_daily (day, outlet_id, sku_id, rep_id, {column_list()})
    SELECT * FROM batch
    ON CONFLICT (day, outlet_id, sku_id, rep_id) DO UPDATE SET {accumulate("sales_daily")}
), by_outlet AS (
    INSERT INTO sales_outlet_daily (outlet_id, day, {column_list()})
    SELECT outlet_id, day, {sums()} FROM batch GROUP BY outlet_id, day
    ON CONFLICT (outlet_id, day) DO UPDATE SET {accumulate("sales_outlet_daily")}
), placed AS (
    SELECT b.day, o.distributor_id, k.brand, {sums("b.")}
    FROM batch b
    LEFT JOIN outlets o ON o.outlet_id = b.outlet_id
    LEFT JOIN skus k ON k.sku_id = b.sku_id
    GROUP BY b.day, o.distributor_id, k.brand
), by_brand AS (
    INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, {column_list()})
    SELECT * FROM placed
    ON CONFLICT ON CONSTRAINT sales_distributor_brand_daily_key DO UPDATE
    SET {accumulate("sales_distributor_brand_daily")}
)
INSERT INTO sales_distributor_daily (day, distributor_id, {column_list()})
SELECT day, distributor_id, {sums()} FROM placed GROUP BY day, distributor_id
ON CONFLICT ON CONSTRAINT sales_distributor_daily_key DO UPDATE SET {accumulate("sales_distributor_daily")}
"""  # noqa: S608 (names from figures.measures, fixed at import)

# The first event to capture a (distributor, order id) wins; its lines come back to be added to the sales rows.
_CLAIM_ORDERS = """
WITH incoming AS (
    SELECT r->>0 AS distributor_id, r->>1 AS order_id, (r->>2)::uuid AS event_id, r->>3 AS outlet_id,
           r->>4 AS rep_id, (r->>5)::date AS day, (r->>6)::timestamptz AS occurred_at,
           (r->>7)::timestamptz AS recorded_at, r->>8 AS source, r->>9 AS actor, r->>10 AS visit_id,
           (r->>11)::float8 AS lat, (r->>12)::float8 AS lon, (r->>13)::float8 AS accuracy_m
    FROM jsonb_array_elements($1::text::jsonb) AS r
), claimed AS (
    INSERT INTO sales_orders SELECT * FROM incoming
    ON CONFLICT DO NOTHING
    RETURNING distributor_id, order_id, event_id, outlet_id, rep_id, day
), lines AS (
    INSERT INTO sales_order_skus (distributor_id, order_id, sku_id, ordered_units, ordered_value, lines)
    SELECT c.distributor_id, c.order_id, r->>3, (r->>4)::bigint, (r->>5)::numeric, (r->>6)::int
    FROM jsonb_array_elements($2::text::jsonb) AS r
    JOIN claimed c ON c.distributor_id = r->>0 AND c.order_id = r->>1 AND c.event_id = (r->>2)::uuid
    RETURNING distributor_id, order_id, sku_id, ordered_units, ordered_value, lines
)
SELECT c.distributor_id, c.order_id, c.day, c.outlet_id, l.sku_id, c.rep_id,
       l.ordered_units, l.ordered_value, l.lines
FROM lines l JOIN claimed c USING (distributor_id, order_id)
"""
_CLAIM_CANCELLATIONS = """
INSERT INTO sales_cancellations (distributor_id, order_id, event_id, outlet_id, occurred_at, recorded_at, source,
                                 actor, reason)
SELECT r->>0, r->>1, (r->>2)::uuid, r->>3, (r->>4)::timestamptz, (r->>5)::timestamptz, r->>6, r->>7, r->>8
FROM jsonb_array_elements($1::text::jsonb) AS r
ON CONFLICT DO NOTHING
RETURNING distributor_id, order_id
"""
_CLAIM_DELIVERIES = """
WITH claimed AS (
    INSERT INTO sales_deliveries (distributor_id, delivery_id, event_id, order_id, outlet_id, occurred_at,
                                  recorded_at, source, actor)
    SELECT r->>0, r->>1, (r->>2)::uuid, r->>3, r->>4, (r->>5)::timestamptz, (r->>6)::timestamptz, r->>7, r->>8
    FROM jsonb_array_elements($1::text::jsonb) AS r
    ON CONFLICT DO NOTHING
    RETURNING distributor_id, delivery_id, event_id, order_id
), lines AS (
    INSERT INTO sales_delivery_lines (distributor_id, delivery_id, sku_id, units)
    SELECT c.distributor_id, c.delivery_id, r->>3, (r->>4)::bigint
    FROM jsonb_array_elements($2::text::jsonb) AS r
    JOIN claimed c ON c.distributor_id = r->>0 AND c.delivery_id = r->>1 AND c.event_id = (r->>2)::uuid
)
SELECT distributor_id, order_id FROM claimed
"""
# A delivered SKU the order did not list still shows on the order's row (ordered 0).
_ENSURE_DELIVERED_SKUS = """
INSERT INTO sales_order_skus (distributor_id, order_id, sku_id, ordered_units, ordered_value, lines)
SELECT DISTINCT d.distributor_id, d.order_id, l.sku_id, 0, 0, 0
FROM unnest($1::text[], $2::text[]) AS t (distributor_id, order_id)
JOIN sales_orders o ON o.distributor_id = t.distributor_id AND o.order_id = t.order_id
JOIN sales_deliveries d ON d.distributor_id = t.distributor_id AND d.order_id = t.order_id
JOIN sales_delivery_lines l ON l.distributor_id = d.distributor_id AND l.delivery_id = d.delivery_id
ON CONFLICT DO NOTHING
"""
# What the order's lines should hold of its cancellation and deliveries, against what they hold: the difference.
_RECONCILE_ORDERS = """
WITH touched AS (
    SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS t (distributor_id, order_id)
), state AS (
    SELECT s.distributor_id, s.order_id, s.sku_id, s.ordered_units, s.ordered_value, s.lines,
           s.cancelled_counted, s.delivered_counted,
           (c.order_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM sales_deliveries d WHERE d.distributor_id = s.distributor_id AND d.order_id = s.order_id
           )) AS cancelled_now,
           coalesce((
               SELECT sum(l.units) FROM sales_deliveries d
               JOIN sales_delivery_lines l ON l.distributor_id = d.distributor_id AND l.delivery_id = d.delivery_id
               WHERE d.distributor_id = s.distributor_id AND d.order_id = s.order_id AND l.sku_id = s.sku_id
           ), 0)::bigint AS delivered_now
    FROM touched t
    JOIN sales_order_skus s ON s.distributor_id = t.distributor_id AND s.order_id = t.order_id
    LEFT JOIN sales_cancellations c ON c.distributor_id = s.distributor_id AND c.order_id = s.order_id
), changed AS (
    UPDATE sales_order_skus t SET cancelled_counted = st.cancelled_now, delivered_counted = st.delivered_now
    FROM state st
    WHERE t.distributor_id = st.distributor_id AND t.order_id = st.order_id AND t.sku_id = st.sku_id
      AND (t.cancelled_counted <> st.cancelled_now OR t.delivered_counted <> st.delivered_now)
    RETURNING t.distributor_id, t.order_id, t.sku_id, st.ordered_units, st.ordered_value, st.lines,
              st.cancelled_now::int - st.cancelled_counted::int AS cancel_sign,
              st.delivered_now - st.delivered_counted AS delivered_delta
)
SELECT o.day, o.outlet_id, c.sku_id, o.rep_id, c.ordered_units, c.ordered_value, c.lines, c.cancel_sign,
       c.delivered_delta
FROM changed c JOIN sales_orders o ON o.distributor_id = c.distributor_id AND o.order_id = c.order_id
"""
_CLAIM_RETURNS = """
WITH claimed AS (
    INSERT INTO sales_returns (distributor_id, return_id, event_id, outlet_id, direction, reason, day, occurred_at,
                               recorded_at, source, actor)
    SELECT r->>0, r->>1, (r->>2)::uuid, r->>3, r->>4, r->>5, (r->>6)::date, (r->>7)::timestamptz,
           (r->>8)::timestamptz, r->>9, r->>10
    FROM jsonb_array_elements($1::text::jsonb) AS r
    ON CONFLICT DO NOTHING
    RETURNING distributor_id, return_id, event_id, outlet_id, direction, reason, day
), lines AS (
    INSERT INTO sales_return_lines (distributor_id, return_id, sku_id, units, counted_value)
    SELECT c.distributor_id, c.return_id, r->>3, (r->>4)::bigint,
           CASE WHEN c.direction = 'from_retailer' AND c.outlet_id IS NOT NULL THEN (r->>4)::bigint * k.list_price END
    FROM jsonb_array_elements($2::text::jsonb) AS r
    JOIN claimed c ON c.distributor_id = r->>0 AND c.return_id = r->>1 AND c.event_id = (r->>2)::uuid
    LEFT JOIN skus k ON k.sku_id = r->>3
    RETURNING distributor_id, return_id, sku_id, units, counted_value
)
SELECT c.day, c.outlet_id, l.sku_id, c.reason, l.units, coalesce(l.counted_value, 0) AS value
FROM lines l JOIN claimed c USING (distributor_id, return_id)
WHERE c.direction = 'from_retailer' AND c.outlet_id IS NOT NULL
"""
# Retailer returns of these SKUs valued at another price than the SKU's list price now (or not valued: the SKU was
# not known when they were applied) take the new value; the difference moves their sales rows.
_REVALUE_RETURNS = """
WITH target AS (
    SELECT l.distributor_id, l.return_id, l.sku_id, r.day, r.outlet_id,
           l.units * k.list_price AS new_value, coalesce(l.counted_value, 0) AS old_value
    FROM sales_return_lines l
    JOIN sales_returns r ON r.distributor_id = l.distributor_id AND r.return_id = l.return_id
    JOIN skus k ON k.sku_id = l.sku_id
    WHERE l.sku_id = ANY($1::text[]) AND r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL
      AND l.counted_value IS DISTINCT FROM l.units * k.list_price
), updated AS (
    UPDATE sales_return_lines t SET counted_value = g.new_value
    FROM target g
    WHERE t.distributor_id = g.distributor_id AND t.return_id = g.return_id AND t.sku_id = g.sku_id
)
SELECT day, outlet_id, sku_id, new_value - old_value AS delta FROM target
"""

CellKey = tuple[date, str, str, str]
"""(day, outlet, SKU, rep) of a sales row."""


def business_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


@dataclass(frozen=True)
class SalesWrites:
    """A batch's sales facts ready to write (each a json_rows parameter, None when the batch has none), and the
    newest event times, for record_freshness."""

    orders: str | None
    order_skus: str | None
    cancellations: str | None
    deliveries: str | None
    delivery_lines: str | None
    returns: str | None
    return_lines: str | None
    newest: NewestTimes


def _rows(rows: Sequence[Sequence[Any]]) -> str | None:
    return json_rows(rows) if rows else None


def _summed(lines: Iterable[tuple[tuple[Any, ...], Sequence[int | Decimal]]]) -> list[tuple[Any, ...]]:
    """Lines summed per key (a SKU listed twice in one event), as rows: the key's fields, then the sums."""
    totals: dict[tuple[Any, ...], list[int | Decimal]] = {}
    for key, figures in lines:
        cell = totals.setdefault(key, [0] * len(figures))
        for i, amount in enumerate(figures):
            cell[i] += amount
    return [(*key, *figures) for key, figures in totals.items()]


@dataclass
class _Facts:
    """A batch's sales facts as prepare_sales collects them."""

    zone: ZoneInfo
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    order_skus: list[tuple[tuple[Any, ...], Sequence[int | Decimal]]] = field(default_factory=list)
    cancellations: list[tuple[Any, ...]] = field(default_factory=list)
    deliveries: list[tuple[Any, ...]] = field(default_factory=list)
    delivery_lines: list[tuple[tuple[Any, ...], Sequence[int | Decimal]]] = field(default_factory=list)
    returns: list[tuple[Any, ...]] = field(default_factory=list)
    return_lines: list[tuple[tuple[Any, ...], Sequence[int | Decimal]]] = field(default_factory=list)


def _order(event: OrderCaptured, facts: _Facts) -> None:
    p = event.payload
    gps = p.gps
    facts.orders.append(
        (
            p.distributor_id,
            p.order_id,
            event.event_id,
            p.outlet_id,
            p.rep_id,
            business_day(event.occurred_at, facts.zone),
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
            p.visit_id,
            gps.lat if gps else None,
            gps.lon if gps else None,
            gps.accuracy_m if gps else None,
        )
    )
    key = (p.distributor_id, p.order_id, event.event_id)
    facts.order_skus.extend(
        ((*key, line.sku_id), (line.quantity, line.unit_price * line.quantity, 1)) for line in p.lines
    )


def _cancellation(event: OrderCancelled, facts: _Facts) -> None:
    c = event.payload
    facts.cancellations.append(
        (
            c.distributor_id,
            c.order_id,
            event.event_id,
            c.outlet_id,
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
            c.reason,
        )
    )


def _delivery(event: OrderDelivered, facts: _Facts) -> None:
    d = event.payload
    facts.deliveries.append(
        (
            d.distributor_id,
            d.delivery_id,
            event.event_id,
            d.order_id,
            d.outlet_id,
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
        )
    )
    key = (d.distributor_id, d.delivery_id, event.event_id)
    facts.delivery_lines.extend(((*key, line.sku_id), (line.quantity,)) for line in d.lines)


def _return(event: ReturnRecorded, facts: _Facts) -> None:
    r = event.payload
    facts.returns.append(
        (
            r.distributor_id,
            r.return_id,
            event.event_id,
            r.outlet_id,
            r.direction,
            r.reason,
            business_day(event.occurred_at, facts.zone),
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.actor,
        )
    )
    key = (r.distributor_id, r.return_id, event.event_id)
    facts.return_lines.extend(((*key, line.sku_id), (line.quantity,)) for line in r.lines)


_STEPS: Steps[_Facts] = {
    OrderCaptured: _order,
    OrderCancelled: _cancellation,
    OrderDelivered: _delivery,
    ReturnRecorded: _return,
}


def prepare_sales(events: Sequence[Envelope], zone: ZoneInfo) -> SalesWrites | None:
    """What write_sales writes for these events (None: nothing that changes sales), computed without the database."""
    facts = _Facts(zone)
    fed: list[Envelope] = []
    for event in events:
        step = _STEPS.get(type(event))
        if step is not None:
            step(event, facts)
            fed.append(event)
    newest = newest_times("sales_daily", fed)
    if newest is None:
        return None
    return SalesWrites(
        _rows(facts.orders),
        _rows(_summed(facts.order_skus)),
        _rows(facts.cancellations),
        _rows(facts.deliveries),
        _rows(_summed(facts.delivery_lines)),
        _rows(facts.returns),
        _rows(_summed(facts.return_lines)),
        newest,
    )


class _Cells:
    """Changes to sales rows, summed per row."""

    def __init__(self) -> None:
        self.rows: dict[CellKey, Figures] = defaultdict(zero)

    def placed(self, key: CellKey, units: int, value: Decimal, lines: int) -> None:
        """An order's lines: ordered, and net."""
        cell = self.rows[key]
        for figure, amount in (("ordered_value", value), ("ordered_units", units)):
            cell[INDEX[figure]] += amount
        for figure, amount in (("value", value), ("units", units), ("lines", lines)):
            cell[INDEX[figure]] += amount

    def cancelled(self, key: CellKey, units: int, value: Decimal, lines: int, sign: int) -> None:
        """An order's lines cancelled (sign +1) or no longer cancelled (-1): off the net, or back on it."""
        cell = self.rows[key]
        for figure, amount in (("cancelled_value", value), ("cancelled_units", units)):
            cell[INDEX[figure]] += sign * amount
        for figure, amount in (("value", value), ("units", units), ("lines", lines)):
            cell[INDEX[figure]] -= sign * amount

    def delivered(self, key: CellKey, units: int) -> None:
        self.rows[key][INDEX["delivered_units"]] += units

    def returned(self, key: CellKey, reason: str | None, units: int, value: Decimal) -> None:
        cell = self.rows[key]
        cell[INDEX["value"]] -= value
        cell[INDEX["returned_value"]] += value
        if reason is not None:
            cell[INDEX["units"]] -= units
            cell[INDEX["returned_units"]] += units
            cell[INDEX[f"returned_{reason}_units"]] += units

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.rows:
            await conn.execute(_UPSERT_SALES, json_rows([(*key, *figures) for key, figures in self.rows.items()]))


async def write_sales(conn: asyncpg.Connection, writes: SalesWrites | None) -> None:
    if writes is None:
        return
    await conn.execute(LOCK_FOR_SALES)
    cells = _Cells()
    touched: list[tuple[str, str]] = []
    if writes.orders:
        for r in await conn.fetch(_CLAIM_ORDERS, writes.orders, writes.order_skus):
            key = (r["day"], r["outlet_id"], r["sku_id"], r["rep_id"])
            cells.placed(key, r["ordered_units"], r["ordered_value"], r["lines"])
            touched.append((r["distributor_id"], r["order_id"]))
    if writes.cancellations:
        touched.extend(tuple(r) for r in await conn.fetch(_CLAIM_CANCELLATIONS, writes.cancellations))
    if writes.deliveries:
        touched.extend(tuple(r) for r in await conn.fetch(_CLAIM_DELIVERIES, writes.deliveries, writes.delivery_lines))
    if touched:
        distributors, order_ids = (list(column) for column in zip(*touched, strict=True))
        await conn.execute(_ENSURE_DELIVERED_SKUS, distributors, order_ids)
        for r in await conn.fetch(_RECONCILE_ORDERS, distributors, order_ids):
            key = (r["day"], r["outlet_id"], r["sku_id"], r["rep_id"])
            if r["cancel_sign"]:
                cells.cancelled(key, r["ordered_units"], r["ordered_value"], r["lines"], r["cancel_sign"])
            if r["delivered_delta"]:
                cells.delivered(key, r["delivered_delta"])
    if writes.returns:
        for r in await conn.fetch(_CLAIM_RETURNS, writes.returns, writes.return_lines):
            cells.returned((r["day"], r["outlet_id"], r["sku_id"], NO_REP), r["reason"], r["units"], r["value"])
    await cells.write(conn)


async def revalue_returns(conn: asyncpg.Connection, sku_ids: Sequence[str]) -> None:
    """After SKUs were upserted (under LOCK_FOR_REFERENCE_CHANGE): retailer returns follow their list price."""
    if not sku_ids:
        return
    cells = _Cells()
    for r in await conn.fetch(_REVALUE_RETURNS, list(sku_ids)):
        cells.returned((r["day"], r["outlet_id"], r["sku_id"], NO_REP), None, 0, r["delta"])
    await cells.write(conn)


def _fed(writes: SalesWrites | None) -> list[NewestTimes]:
    return [writes.newest] if writes else []


SALES = Projection("sales_daily", tuple(_STEPS), prepare_sales, write_sales, _fed)
