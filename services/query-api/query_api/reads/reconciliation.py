"""Distributor stock reconciled by query-api from its own facts, and tied out against the stock ledger.

Book stock follows the stock ledger's rule (stock-ledger's ledger.py): the latest count (by counted_at, then event
id) plus every movement after it, in event time. Movements come from query-api's own projections: primary
invoices and adjustments (projections/reconciliation.py), retailer and company returns, and secondary sales from
the net-sales facts (projections/sales.py): an order neither delivered nor cancelled leaves at its capture time, a
delivered one leaves with its delivered units at delivery time, a cancelled one never leaves; a distributor's
invoice without an order leaves at its time (projections/retailer_invoices.py). For a period
[start, end):

    closing = opening + primary_in - secondary_out + returns_in - returns_out + adjustments + count_variance

where count_variance is what counts in the period corrected. `book_now` (every event) must equal the ledger's
on-hand for the same position; a difference is a bug in one of the two services, shown per row, exported as a
metric and listed by the check job (jobs/reconciliation_check.py).
"""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# $1 period start, $2 period end (exclusive), $3 distributor or null, $4 SKU or null.
_RECONCILE = """
WITH movements AS (
    SELECT distributor_id, sku_id, occurred_at, kind, units FROM reconciliation_movements
    WHERE ($3::text IS NULL OR distributor_id = $3) AND ($4::text IS NULL OR sku_id = $4)
    UNION ALL
    SELECT r.distributor_id, l.sku_id, r.occurred_at,
           CASE r.direction WHEN 'from_retailer' THEN 'return_in' ELSE 'return_out' END,
           CASE r.direction WHEN 'from_retailer' THEN l.units ELSE -l.units END
    FROM sales_returns r
    JOIN sales_return_lines l ON l.distributor_id = r.distributor_id AND l.return_id = r.return_id
    WHERE ($3::text IS NULL OR r.distributor_id = $3) AND ($4::text IS NULL OR l.sku_id = $4)
    UNION ALL
    SELECT o.distributor_id, s.sku_id, o.occurred_at, 'secondary', -s.ordered_units
    FROM sales_orders o
    CROSS JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s
    WHERE s.ordered_units > 0
      AND NOT EXISTS (
          SELECT 1 FROM sales_deliveries d WHERE d.distributor_id = o.distributor_id AND d.order_id = o.order_id
      )
      AND NOT EXISTS (
          SELECT 1 FROM sales_cancellations c WHERE c.distributor_id = o.distributor_id AND c.order_id = o.order_id
      )
      AND ($3::text IS NULL OR o.distributor_id = $3) AND ($4::text IS NULL OR s.sku_id = $4)
    UNION ALL
    SELECT d.distributor_id, l.sku_id, d.occurred_at, 'secondary', -l.units
    FROM sales_deliveries d
    JOIN sales_delivery_lines l ON l.distributor_id = d.distributor_id AND l.delivery_id = d.delivery_id
    WHERE ($3::text IS NULL OR d.distributor_id = $3) AND ($4::text IS NULL OR l.sku_id = $4)
    UNION ALL
    -- A distributor's invoice without an order (projections/retailer_invoices.py): goods left at its time. One
    -- naming an order is among the deliveries above.
    SELECT i.distributor_id, l.sku_id, i.occurred_at, 'secondary', -l.units
    FROM retailer_invoices i
    JOIN retailer_invoice_lines l ON l.distributor_id = i.distributor_id AND l.invoice_number = i.invoice_number
    WHERE i.order_id IS NULL AND ($3::text IS NULL OR i.distributor_id = $3) AND ($4::text IS NULL OR l.sku_id = $4)
), positions AS (
    SELECT distributor_id, sku_id FROM movements
    UNION
    SELECT distributor_id, sku_id FROM reconciliation_counts
    WHERE ($3::text IS NULL OR distributor_id = $3) AND ($4::text IS NULL OR sku_id = $4)
    UNION
    SELECT distributor_id, sku_id FROM stock_positions
    WHERE ($3::text IS NULL OR distributor_id = $3) AND ($4::text IS NULL OR sku_id = $4)
), anchored AS (
    -- The count each book figure starts from: the latest before the period, before its end, and of all.
    SELECT p.distributor_id, p.sku_id,
           c0.counted_at AS open_at, coalesce(c0.quantity, 0) AS open_count,
           c1.counted_at AS close_at, coalesce(c1.quantity, 0) AS close_count,
           cn.counted_at AS now_at, coalesce(cn.quantity, 0) AS now_count
    FROM positions p
    LEFT JOIN LATERAL (
        SELECT counted_at, quantity FROM reconciliation_counts c
        WHERE c.distributor_id = p.distributor_id AND c.sku_id = p.sku_id AND c.counted_at < $1
        ORDER BY counted_at DESC, event_id DESC LIMIT 1
    ) c0 ON true
    LEFT JOIN LATERAL (
        SELECT counted_at, quantity FROM reconciliation_counts c
        WHERE c.distributor_id = p.distributor_id AND c.sku_id = p.sku_id AND c.counted_at < $2
        ORDER BY counted_at DESC, event_id DESC LIMIT 1
    ) c1 ON true
    LEFT JOIN LATERAL (
        SELECT counted_at, quantity FROM reconciliation_counts c
        WHERE c.distributor_id = p.distributor_id AND c.sku_id = p.sku_id
        ORDER BY counted_at DESC, event_id DESC LIMIT 1
    ) cn ON true
)
SELECT a.distributor_id, a.sku_id,
       a.open_count + coalesce(sum(m.units) FILTER (
           WHERE (a.open_at IS NULL OR m.occurred_at > a.open_at) AND m.occurred_at < $1), 0) AS opening,
       coalesce(sum(m.units) FILTER (WHERE m.kind = 'primary' AND m.occurred_at >= $1 AND m.occurred_at < $2), 0)
           AS primary_in,
       -coalesce(sum(m.units) FILTER (WHERE m.kind = 'secondary' AND m.occurred_at >= $1 AND m.occurred_at < $2), 0)
           AS secondary_out,
       coalesce(sum(m.units) FILTER (WHERE m.kind = 'return_in' AND m.occurred_at >= $1 AND m.occurred_at < $2), 0)
           AS returns_in,
       -coalesce(sum(m.units) FILTER (WHERE m.kind = 'return_out' AND m.occurred_at >= $1 AND m.occurred_at < $2), 0)
           AS returns_out,
       coalesce(sum(m.units) FILTER (WHERE m.kind = 'adjustment' AND m.occurred_at >= $1 AND m.occurred_at < $2), 0)
           AS adjustments,
       a.close_count + coalesce(sum(m.units) FILTER (
           WHERE (a.close_at IS NULL OR m.occurred_at > a.close_at) AND m.occurred_at < $2), 0) AS closing,
       CASE WHEN a.close_at >= $1 THEN a.close_count END AS counted,
       a.close_at AS counted_at,
       a.now_count + coalesce(sum(m.units) FILTER (WHERE a.now_at IS NULL OR m.occurred_at > a.now_at), 0)
           AS book_now,
       sp.on_hand AS ledger_on_hand, sp.version AS ledger_version
FROM anchored a
LEFT JOIN movements m ON m.distributor_id = a.distributor_id AND m.sku_id = a.sku_id
LEFT JOIN stock_positions sp ON sp.distributor_id = a.distributor_id AND sp.sku_id = a.sku_id
GROUP BY a.distributor_id, a.sku_id, a.open_at, a.open_count, a.close_at, a.close_count, a.now_at, a.now_count,
         sp.on_hand, sp.version
ORDER BY a.distributor_id, a.sku_id
"""


@dataclass(frozen=True)
class PositionReconciliation:
    distributor_id: str
    sku_id: str
    opening: int
    primary_in: int
    secondary_out: int
    returns_in: int
    returns_out: int
    adjustments: int
    closing: int
    counted: int | None
    """The latest count in the period, if any."""
    counted_at: datetime | None
    book_now: int
    """Book stock with every event applied: what the stock ledger's on-hand must be."""
    ledger_on_hand: int | None
    ledger_version: int | None

    @property
    def count_variance(self) -> int:
        """What counts in the period corrected: the closing figure beyond the period's movements."""
        flows = self.primary_in - self.secondary_out + self.returns_in - self.returns_out + self.adjustments
        return self.closing - self.opening - flows

    @property
    def ledger_difference(self) -> int:
        """book_now - the ledger's on-hand (a position the ledger never reported holds 0 there)."""
        return self.book_now - (self.ledger_on_hand or 0)


_FIGURES = ("opening", "primary_in", "secondary_out", "returns_in", "returns_out", "adjustments", "closing", "book_now")


async def reconcile(
    conn: asyncpg.Connection, start: datetime, end: datetime, distributor_id: str | None, sku_id: str | None
) -> list[PositionReconciliation]:
    """Every position (of one distributor or SKU, if given) over [start, end)."""
    rows = await conn.fetch(_RECONCILE, start, end, distributor_id, sku_id)
    return [
        PositionReconciliation(
            distributor_id=r["distributor_id"],
            sku_id=r["sku_id"],
            **{name: int(r[name]) for name in _FIGURES},
            counted=None if r["counted"] is None else int(r["counted"]),
            counted_at=r["counted_at"] if r["counted"] is not None else None,
            ledger_on_hand=r["ledger_on_hand"],
            ledger_version=r["ledger_version"],
        )
        for r in rows
    ]
