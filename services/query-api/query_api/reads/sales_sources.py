"""Where net secondary sales came from: the reps' orders, retailer returns, and each distributor billing feed's
invoices without an order (projections/retailer_invoices.py); and how the feeds' invoices matched orders."""

from dataclasses import dataclass
from datetime import date

import asyncpg

# sales_lines by origin: an order's rows (and their compensating rows) are the reps', a return's are returns, a 'dms'
# row is its invoice's feed (retailer_invoices.source). The rows sum to the net figure of the same filter.
_BY_SOURCE = """
SELECT CASE WHEN l.kind = 'dms' THEN 'invoice' WHEN l.kind IN ('return', 'revalue') THEN 'return' ELSE 'order' END
           AS origin,
       coalesce(i.source, '') AS source,
       sum(l.value) AS value, sum(l.units)::bigint AS units, count(DISTINCT l.document_id) AS documents
FROM sales_lines l
LEFT JOIN retailer_invoices i ON l.kind = 'dms' AND i.distributor_id = l.distributor_id
                              AND i.invoice_number = l.document_id
WHERE l.day BETWEEN $1 AND $2 AND ($3::text IS NULL OR l.distributor_id = $3)
  AND ($4::text[] IS NULL OR l.distributor_id = ANY($4))
GROUP BY 1, 2
HAVING sum(l.value) <> 0 OR sum(l.units) <> 0
ORDER BY 1, 2
"""

# The feeds' invoices of the period by how they matched: delivering an order captured, naming an order not captured
# (yet: it counts once the order arrives), or without an order (counted as sales of their own).
_MATCHING = """
SELECT count(*) FILTER (WHERE i.order_id IS NOT NULL AND o.order_id IS NOT NULL) AS matched,
       count(*) FILTER (WHERE i.order_id IS NOT NULL AND o.order_id IS NULL) AS awaiting_order,
       count(*) FILTER (WHERE i.order_id IS NULL) AS without_order
FROM retailer_invoices i
LEFT JOIN sales_orders o ON o.distributor_id = i.distributor_id AND o.order_id = i.order_id
WHERE i.day BETWEEN $1 AND $2 AND ($3::text IS NULL OR i.distributor_id = $3)
  AND ($4::text[] IS NULL OR i.distributor_id = ANY($4))
"""


@dataclass(frozen=True)
class SourceQuery:
    date_from: date
    date_to: date
    distributor_id: str | None
    distributors: list[str] | None


async def by_source(conn: asyncpg.Connection, q: SourceQuery) -> list[asyncpg.Record]:
    return list(await conn.fetch(_BY_SOURCE, q.date_from, q.date_to, q.distributor_id, q.distributors))


async def invoice_matching(conn: asyncpg.Connection, q: SourceQuery) -> asyncpg.Record:
    row = await conn.fetchrow(_MATCHING, q.date_from, q.date_to, q.distributor_id, q.distributors)
    assert row is not None  # an aggregate always returns a row
    return row
