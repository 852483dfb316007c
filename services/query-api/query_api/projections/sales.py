"""Net secondary sales: orders, their cancellations and deliveries, and retailer returns -> the append-only order-line
fact table sales_lines and its rollups per (outlet, day), per (day, distributor) and per (day, distributor, brand).

Figures (figures/measures.py) are a function of the set of events, never of their arrival order:
- an order adds its lines (ordered, and net) on its business day, once per (distributor, order id);
- a cancellation takes the order's lines off its net, on the order's day, whether it arrives before or after the
  order; a cancellation does not count once the order has a delivery (the goods left: that is a return), as in
  the stock ledger;
- deliveries add their units to `delivered_units` of the order's row, once per (distributor, delivery id);
- a retailer return lowers net on the day it was recorded, at the outlet, valued at the SKU's list price (revalued
  when the price changes). It belongs to no rep: its rows carry the rep id ''.
The facts are kept per event (sales_orders, sales_cancellations, ...). sales_lines is never updated: an order
appends its lines; a cancellation, an un-cancellation (a delivery after it) or a delivery appends per SKU the
difference between what the facts say and what the order's rows sum to (a compensating 'adjust' row); returns
and their revaluations append theirs. Each statement appends its rows and queues them for the rollups
(sales_lines_unfolded, migration 0018), which sales_fold.py adds to them set-based in larger groups, in its own
transaction (migration 0015 has the table; the sales_daily view regroups it per (day, outlet, SKU, rep)).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.figures.measures import RETURN_REASONS, column_list
from query_api.projections.base import Projection
from query_api.projections.freshness import NewestTimes, newest_times
from query_api.projections.sales_bulk import SalesBulkLoader
from query_api.projections.sales_facts import CONSUMES, collect_sales
from query_api.projections.sales_rollups import LOCK_FOR_SALES
from sellthrough_contracts import Envelope
from sellthrough_runtime.db import json_rows

NO_REP = ""
"""The rep id of the rows a retailer return makes: returns are not taken by a rep."""

# A batch's new sales_lines rows (`new_lines`, a data-modifying CTE's RETURNING *) are queued for the rollups in the
# statement that appends them; the fold (sales_fold.py) adds them to the four rollups later, in larger groups, and
# reads add what is queued (migration 0018), so every figure stays exact meanwhile.
QUEUE_FOR_FOLD = f"""
unfolded AS (
    INSERT INTO sales_lines_unfolded (day, outlet_id, sku_id, {column_list()})
    SELECT day, outlet_id, sku_id, {column_list()} FROM new_lines
)"""  # noqa: S608 (names from figures.measures, fixed at import)

# The months a batch's rows fall in get their partition (migration 0015) before rows are routed to it.
_LOCK_AND_PARTITIONS = f"""
SELECT ({LOCK_FOR_SALES}), (SELECT count(sales_lines_month(m)) FROM unnest($1::date[]) AS m)
"""  # noqa: S608 (a constant of sales_rollups)

# The first event to capture a (distributor, order id) wins; its lines are appended. Returned: the claimed orders
# a cancellation or delivery already waits for (arrival order never changes a figure), to reconcile.
_CLAIM_ORDERS = f"""
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
), new_lines AS (
    INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines,
                             ordered_value, ordered_units)
    SELECT c.day, c.distributor_id, c.order_id, 'order', c.outlet_id, r->>3, c.rep_id, (r->>5)::numeric,
           (r->>4)::bigint, (r->>6)::int, (r->>5)::numeric, (r->>4)::bigint
    FROM jsonb_array_elements($2::text::jsonb) AS r
    JOIN claimed c ON c.distributor_id = r->>0 AND c.order_id = r->>1 AND c.event_id = (r->>2)::uuid
    RETURNING *
), {QUEUE_FOR_FOLD}
SELECT c.distributor_id, c.order_id FROM claimed c
WHERE EXISTS (SELECT 1 FROM sales_cancellations x WHERE x.distributor_id = c.distributor_id
                                                      AND x.order_id = c.order_id)
   OR EXISTS (SELECT 1 FROM sales_deliveries x WHERE x.distributor_id = c.distributor_id AND x.order_id = c.order_id)
"""  # noqa: S608 (names from figures.measures, fixed at import)
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
# What an order's lines should hold of its cancellation and deliveries (from the facts), against what its rows
# hold (their sums): the difference is appended as one compensating 'adjust' row per SKU. A cancellation does not
# count once the order has a delivery; a SKU delivered but not ordered gets rows of its own (ordered 0).
_RECONCILE_ORDERS = f"""
WITH touched AS (
    SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS t (distributor_id, order_id)
), orders AS (
    SELECT o.distributor_id, o.order_id, o.day, o.outlet_id, o.rep_id,
           (EXISTS (SELECT 1 FROM sales_cancellations c
                    WHERE c.distributor_id = o.distributor_id AND c.order_id = o.order_id)
            AND NOT EXISTS (SELECT 1 FROM sales_deliveries d
                            WHERE d.distributor_id = o.distributor_id AND d.order_id = o.order_id)) AS cancelled_now
    FROM touched t JOIN sales_orders o ON o.distributor_id = t.distributor_id AND o.order_id = t.order_id
), counted AS (
    SELECT l.distributor_id, l.document_id AS order_id, l.sku_id, sum(l.ordered_units) AS ordered_units,
           sum(l.ordered_value) AS ordered_value, coalesce(sum(l.lines) FILTER (WHERE l.kind = 'order'), 0) AS lines,
           sum(l.cancel_mark) AS cancel_mark, sum(l.delivered_units) AS delivered
    FROM orders o
    JOIN sales_lines l ON l.distributor_id = o.distributor_id AND l.document_id = o.order_id
    WHERE l.kind IN ('order', 'adjust')
    GROUP BY 1, 2, 3
), delivered AS (
    SELECT d.distributor_id, d.order_id, dl.sku_id, sum(dl.units) AS units
    FROM orders o
    JOIN sales_deliveries d ON d.distributor_id = o.distributor_id AND d.order_id = o.order_id
    JOIN sales_delivery_lines dl ON dl.distributor_id = d.distributor_id AND dl.delivery_id = d.delivery_id
    GROUP BY 1, 2, 3
), state AS (
    SELECT o.distributor_id, o.order_id, o.day, o.outlet_id, o.rep_id, coalesce(c.sku_id, v.sku_id) AS sku_id,
           coalesce(c.ordered_units, 0) AS ordered_units, coalesce(c.ordered_value, 0) AS ordered_value,
           coalesce(c.lines, 0) AS lines,
           -- Only lines with something ordered take a cancellation: a delivered, unordered SKU has no cancellation
           -- to count (and with a delivery there is none).
           CASE WHEN coalesce(c.ordered_units, 0) <> 0 OR coalesce(c.ordered_value, 0) <> 0
                     OR coalesce(c.lines, 0) <> 0
                THEN o.cancelled_now::int - coalesce(c.cancel_mark, 0) ELSE 0 END AS sign,
           coalesce(v.units, 0) - coalesce(c.delivered, 0) AS delivered_delta
    FROM (counted c FULL JOIN delivered v
          ON v.distributor_id = c.distributor_id AND v.order_id = c.order_id AND v.sku_id = c.sku_id)
    JOIN orders o ON o.distributor_id = coalesce(c.distributor_id, v.distributor_id)
                 AND o.order_id = coalesce(c.order_id, v.order_id)
), new_lines AS (
    INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, cancel_mark, value,
                             units, lines, cancelled_value, cancelled_units, delivered_units)
    SELECT day, distributor_id, order_id, 'adjust', outlet_id, sku_id, rep_id, sign, -sign * ordered_value,
           -sign * ordered_units, -sign * lines, sign * ordered_value, sign * ordered_units, delivered_delta
    FROM state
    WHERE sign <> 0 OR delivered_delta <> 0
    RETURNING *
), {QUEUE_FOR_FOLD}
SELECT count(*) FROM new_lines
"""  # noqa: S608 (names from figures.measures, fixed at import)

# A retailer return's rows: net down, valued at the SKU's list price (0 until the SKU is known; revalued then).
_RETURN_REASON_UNITS = ", ".join(f"CASE c.reason WHEN '{reason}' THEN l.units ELSE 0 END" for reason in RETURN_REASONS)
_CLAIM_RETURNS = f"""
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
), new_lines AS (
    INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units,
                             returned_value, returned_units, {", ".join(f"returned_{r}_units" for r in RETURN_REASONS)})
    SELECT c.day, c.distributor_id, c.return_id, 'return', c.outlet_id, l.sku_id, '', -coalesce(l.counted_value, 0),
           -l.units, coalesce(l.counted_value, 0), l.units, {_RETURN_REASON_UNITS}
    FROM lines l JOIN claimed c ON c.distributor_id = l.distributor_id AND c.return_id = l.return_id
    WHERE c.direction = 'from_retailer' AND c.outlet_id IS NOT NULL
    RETURNING *
), {QUEUE_FOR_FOLD}
SELECT count(*) FROM new_lines
"""  # noqa: S608 (names from figures.measures, fixed at import)
# Retailer returns of these SKUs valued at another price than the SKU's list price now (or not valued: the SKU was
# not known when they were applied) take the new value: the difference is appended as 'revalue' rows.
_REVALUE_RETURNS = f"""
WITH target AS (
    SELECT l.distributor_id, l.return_id, l.sku_id, r.day, r.outlet_id,
           l.units * k.list_price - coalesce(l.counted_value, 0) AS delta, l.units * k.list_price AS new_value
    FROM sales_return_lines l
    JOIN sales_returns r ON r.distributor_id = l.distributor_id AND r.return_id = l.return_id
    JOIN skus k ON k.sku_id = l.sku_id
    WHERE l.sku_id = ANY($1::text[]) AND r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL
      AND l.counted_value IS DISTINCT FROM l.units * k.list_price
), updated AS (
    UPDATE sales_return_lines t SET counted_value = g.new_value
    FROM target g
    WHERE t.distributor_id = g.distributor_id AND t.return_id = g.return_id AND t.sku_id = g.sku_id
), new_lines AS (
    INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value,
                             returned_value)
    SELECT day, distributor_id, return_id, 'revalue', outlet_id, sku_id, '', -delta, delta FROM target
    WHERE delta <> 0
    RETURNING *
), {QUEUE_FOR_FOLD}
SELECT count(*) FROM new_lines
"""  # noqa: S608 (names from figures.measures, fixed at import)


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
    months: list[date]
    """The first day of each month the batch's orders and returns fall in: their partitions must exist."""
    newest: NewestTimes


def _rows(rows: Sequence[Sequence[Any]]) -> str | None:
    return json_rows(rows) if rows else None


def prepare_sales(events: Sequence[Envelope], zone: ZoneInfo) -> SalesWrites | None:
    """What write_sales writes for these events (None: nothing that changes sales), computed without the database."""
    facts, fed = collect_sales(events, zone)
    newest = newest_times("sales_daily", fed)
    if newest is None:
        return None
    return SalesWrites(
        _rows(facts.orders),
        _rows(facts.order_skus),
        _rows(facts.cancellations),
        _rows(facts.deliveries),
        _rows(facts.delivery_lines),
        _rows(facts.returns),
        _rows(facts.return_lines),
        sorted({day.replace(day=1) for day in {row[5] for row in facts.orders} | {row[6] for row in facts.returns}}),
        newest,
    )


async def write_sales(conn: asyncpg.Connection, writes: SalesWrites | None) -> None:
    if writes is None:
        return
    await conn.execute(_LOCK_AND_PARTITIONS, writes.months)
    touched: list[tuple[str, str]] = []
    if writes.orders:
        touched.extend(tuple(r) for r in await conn.fetch(_CLAIM_ORDERS, writes.orders, writes.order_skus))
    if writes.cancellations:
        touched.extend(tuple(r) for r in await conn.fetch(_CLAIM_CANCELLATIONS, writes.cancellations))
    if writes.deliveries:
        touched.extend(tuple(r) for r in await conn.fetch(_CLAIM_DELIVERIES, writes.deliveries, writes.delivery_lines))
    if touched:
        distributors, order_ids = (list(column) for column in zip(*touched, strict=True))
        await conn.execute(_RECONCILE_ORDERS, distributors, order_ids)
    if writes.returns:
        await conn.execute(_CLAIM_RETURNS, writes.returns, writes.return_lines)


async def revalue_returns(conn: asyncpg.Connection, sku_ids: Sequence[str]) -> None:
    """After SKUs were upserted (under LOCK_FOR_REFERENCE_CHANGE): retailer returns follow their list price."""
    if sku_ids:
        await conn.execute(_REVALUE_RETURNS, list(sku_ids))


def _fed(writes: SalesWrites | None) -> list[NewestTimes]:
    return [writes.newest] if writes else []


SALES = Projection("sales_daily", CONSUMES, prepare_sales, write_sales, _fed, SalesBulkLoader())
