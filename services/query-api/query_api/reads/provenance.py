"""The events behind a sales figure: every event that moved the net figure of the cells a filter selects, with
what it contributed, so that the listed events sum to the figure (sales.py says how each event counts).

- OrderCaptured: + its lines, on the order's business day;
- OrderCancelled: - the order's lines, on the order's day, while it counts (no delivery);
- ReturnRecorded (from a retailer): - its units at list price, on its own day, with no rep;
- RetailerInvoiced without an order (a distributor's DMS or Tally invoice, projections/retailer_invoices.py): + its
  lines on the invoice date, with no rep, its `source` the connector's.
Deliveries (an invoice naming an order among them) move no net figure and are not listed. Geography is today's,
as in the drill-down.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from query_api.reads.cell import Cell

# Each (event, SKU) contribution with the keys a cell is filtered by.
_CONTRIBUTIONS = """
WITH contributions AS (
    SELECT o.event_id, 'OrderCaptured' AS event_type, o.order_id AS reference, o.day, o.outlet_id, o.rep_id,
           o.source, o.actor, o.occurred_at, o.recorded_at, o.lat, o.lon, o.accuracy_m,
           s.sku_id, s.lines, s.ordered_units AS units, s.ordered_value AS value
    FROM sales_orders o
    CROSS JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s
    WHERE o.day BETWEEN $1 AND $2 AND s.lines > 0
    UNION ALL
    SELECT c.event_id, 'OrderCancelled', c.order_id, o.day, o.outlet_id, o.rep_id,
           c.source, c.actor, c.occurred_at, c.recorded_at, NULL, NULL, NULL,
           s.sku_id, -s.lines, -s.ordered_units, -s.ordered_value
    FROM sales_cancellations c
    JOIN sales_orders o ON o.distributor_id = c.distributor_id AND o.order_id = c.order_id
    CROSS JOIN LATERAL sales_order_skus(c.distributor_id, c.order_id) s
    WHERE o.day BETWEEN $1 AND $2 AND s.cancelled_counted
    UNION ALL
    SELECT r.event_id, 'ReturnRecorded', r.return_id, r.day, r.outlet_id, '',
           r.source, r.actor, r.occurred_at, r.recorded_at, NULL, NULL, NULL,
           l.sku_id, 0, -l.units, -coalesce(l.counted_value, 0)
    FROM sales_returns r
    JOIN sales_return_lines l ON l.distributor_id = r.distributor_id AND l.return_id = r.return_id
    WHERE r.day BETWEEN $1 AND $2 AND r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL
    UNION ALL
    SELECT i.event_id, 'RetailerInvoiced', i.invoice_number, i.day, i.outlet_id, '',
           i.source, i.actor, i.occurred_at, i.recorded_at, NULL, NULL, NULL,
           l.sku_id, l.lines, l.units, l.value
    FROM retailer_invoices i
    JOIN retailer_invoice_lines l ON l.distributor_id = i.distributor_id AND l.invoice_number = i.invoice_number
    WHERE i.day BETWEEN $1 AND $2 AND i.order_id IS NULL
), selected AS (
    SELECT c.*, ou.distributor_id
    FROM contributions c
    LEFT JOIN outlets ou ON ou.outlet_id = c.outlet_id
    LEFT JOIN distributor_geography g ON g.distributor_id = ou.distributor_id
    LEFT JOIN skus k ON k.sku_id = c.sku_id
    WHERE ($3::text IS NULL OR g.zone_id = $3) AND ($4::text IS NULL OR g.region_id = $4)
      AND ($5::text IS NULL OR ou.distributor_id = $5) AND ($6::text IS NULL OR c.outlet_id = $6)
      AND ($7::text IS NULL OR c.sku_id = $7) AND ($8::text IS NULL OR k.brand = $8)
      AND ($9::text IS NULL OR c.rep_id = $9) AND ($10::text[] IS NULL OR ou.distributor_id = ANY($10))
)"""

# Each order's location verdict (LocationChecked, projections/field_checks.py) beside it; none for other events.
_PAGE = f"""{_CONTRIBUTIONS}, page AS (
SELECT event_id, event_type, reference, day, outlet_id, max(distributor_id) AS distributor_id, rep_id, source, actor,
       occurred_at, recorded_at, lat, lon, accuracy_m,
       count(*) AS skus, sum(lines) AS lines, sum(units) AS units, sum(value) AS value
FROM selected
WHERE $11::date IS NULL OR (day, event_id) > ($11, $12::uuid)
GROUP BY event_id, event_type, reference, day, outlet_id, rep_id, source, actor, occurred_at, recorded_at,
         lat, lon, accuracy_m
ORDER BY day, event_id
LIMIT $13
)
SELECT page.*, lc.verdict AS location_verdict, lc.distance_m AS location_distance_m
FROM page LEFT JOIN location_checks lc ON lc.subject_event_id = page.event_id
ORDER BY page.day, page.event_id
"""  # noqa: S608 (one constant CTE, no input)

_TOTAL = f"""{_CONTRIBUTIONS}
SELECT count(DISTINCT event_id) AS events, coalesce(sum(lines), 0) AS lines, coalesce(sum(units), 0) AS units,
       coalesce(sum(value), 0) AS value
FROM selected
"""  # noqa: S608 (one constant CTE, no input)


@dataclass(frozen=True)
class CellFilter:
    """A drill-down cell: its days and keys."""

    date_from: date
    date_to: date
    keys: Cell

    def arguments(self) -> tuple[object, ...]:
        k = self.keys
        scope = None if k.distributors is None else list(k.distributors)
        return (self.date_from, self.date_to, k.zone, k.region, k.distributor, k.outlet, k.sku, k.brand, k.rep, scope)


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: events are listed by (business day, event id)."""

    day: date
    event_id: UUID

    def encode(self) -> str:
        return f"{self.day.isoformat()}_{self.event_id}"

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Raises ValueError for anything not made by encode()."""
        day, _, event_id = text.partition("_")
        return cls(date.fromisoformat(day), UUID(event_id))


async def events_page(
    conn: asyncpg.Connection, cell: CellFilter, after: Cursor | None, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _PAGE, *cell.arguments(), after.day if after else None, after.event_id if after else None, limit
        )
    )


async def events_total(conn: asyncpg.Connection, cell: CellFilter) -> asyncpg.Record:
    return await conn.fetchrow(_TOTAL, *cell.arguments())


async def events_in_batches(
    pool: asyncpg.Pool, cell: CellFilter, after: Cursor | None, batch: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """Every event of the cell after `after`, `batch` rows at a time from a server-side cursor (an export): the
    page statement without its limit, on a connection of its own held while the rows are sent."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(
            _PAGE, *cell.arguments(), after.day if after else None, after.event_id if after else None, None
        )
        while records := await cursor.fetch(batch):
            yield records
