"""A distributor's invoices to retailers (RetailerInvoiced: its DMS or a Tally export) as secondary sales.

Matching, so that nothing is counted twice whatever arrives first:
- an invoice naming an order (order_id) is that order's delivery: it is handed to the sales projection as an
  OrderDelivered with the invoice number as delivery id (sales.py's write path, unchanged), so the order's
  figures count once, with the invoiced units as delivered, whether the invoice arrives before or after the order
  (an invoice for an order never captured waits, counting nothing, as a delivery does);
- an invoice without an order is a sale no rep announced: its lines are appended to sales_lines as rows of kind
  'dms' (document id = invoice number, no rep) on the invoice date, and rolled up like every other row;
- the first event of a (distributor, invoice number) wins (order-capture already refuses the same number under
  another event id, business_keys.py); a redelivered event is skipped by the consumer before it gets here.

Kept in its own module, calling the sales projection's functions rather than editing them, so the two write paths
evolve apart. Registered after SALES (registry.py): the sales tables are written first in a batch.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection
from query_api.projections.freshness import NewestTimes, newest_times, record_freshness
from query_api.projections.sales import QUEUE_FOR_FOLD, prepare_sales, write_sales
from query_api.projections.sales_fold import ROLLUPS
from query_api.projections.sales_rollups import LOCK_FOR_SALES
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import DeliveryLine, OrderDelivered, OrderDeliveredPayload, RetailerInvoiced
from sellthrough_runtime.db import json_rows

FRESHNESS_NAME = "retailer_invoices"
"""Its own freshness row: sales_daily's is the sales projection's (one statement must not name a row twice)."""

DMS_KIND = "dms"
"""The sales_lines kind of an invoice without an order (migration 0021)."""

_LOCK_AND_PARTITIONS = f"""
SELECT ({LOCK_FOR_SALES}), (SELECT count(sales_lines_month(m)) FROM unnest($1::date[]) AS m)
"""  # noqa: S608 (a constant of sales_rollups)

# The first event of a (distributor, invoice number) claims it (`claimed`), and its lines are stored per SKU
# (`invoice_lines`); $1 the invoices, $2 their lines, as InvoiceWrites encodes them.
_STORE_CLAIMED = """
claimed AS (
    INSERT INTO retailer_invoices (distributor_id, invoice_number, event_id, outlet_id, order_id, day, occurred_at,
                                   recorded_at, source, actor, currency)
    SELECT r->>0, r->>1, (r->>2)::uuid, r->>3, r->>4, (r->>5)::date, (r->>6)::timestamptz, (r->>7)::timestamptz,
           r->>8, r->>9, r->>10
    FROM jsonb_array_elements($1::text::jsonb) AS r
    ON CONFLICT DO NOTHING
    RETURNING distributor_id, invoice_number, event_id, outlet_id, order_id, day
), invoice_lines AS (
    INSERT INTO retailer_invoice_lines (distributor_id, invoice_number, sku_id, units, value, taxable_value, tax,
                                        lines)
    SELECT c.distributor_id, c.invoice_number, r->>3, (r->>4)::bigint, (r->>5)::numeric, (r->>6)::numeric,
           (r->>7)::numeric, (r->>8)::int
    FROM jsonb_array_elements($2::text::jsonb) AS r
    JOIN claimed c ON c.distributor_id = r->>0 AND c.invoice_number = r->>1 AND c.event_id = (r->>2)::uuid
    RETURNING distributor_id, invoice_number, sku_id, units, value, lines
)"""


def _sales_lines_of(invoices: str, lines: str) -> str:
    """`new_lines AS (...)`: the lines of the invoices without an order appended to sales_lines as sales of their
    own; `invoices` and `lines` name tables or CTEs shaped as retailer_invoices and retailer_invoice_lines."""
    return f"""
new_lines AS (
    INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines,
                             ordered_value, ordered_units, delivered_units)
    SELECT i.day, i.distributor_id, i.invoice_number, '{DMS_KIND}', i.outlet_id, l.sku_id, '', l.value, l.units,
           l.lines, l.value, l.units, l.units
    FROM {invoices} i
    JOIN {lines} l ON l.distributor_id = i.distributor_id AND l.invoice_number = i.invoice_number
    WHERE i.order_id IS NULL
    RETURNING *
)"""  # noqa: S608 (names fixed in this module)


# The live path: claim and store, and queue the sales of an invoice without an order for the rollups' fold, in one
# statement. Returned: the claimed invoices' numbers.
_CLAIM_INVOICES = f"""
WITH {_STORE_CLAIMED}, {_sales_lines_of("claimed", "invoice_lines")}, {QUEUE_FOR_FOLD}
SELECT distributor_id, invoice_number FROM claimed
"""  # noqa: S608 (names from figures.measures and constants of this module, fixed at import)

# A rebuild's load: the invoices and their lines only; their sales are derived at `finish` (RetailerInvoicesBulkLoader).
_STORE_INVOICES = f"""
WITH {_STORE_CLAIMED}
SELECT count(*) FROM invoice_lines
"""  # noqa: S608 (a constant of this module)
_DMS_MONTHS = """
SELECT count(sales_lines_month(m))
FROM (SELECT DISTINCT date_trunc('month', day)::date AS m FROM retailer_invoices WHERE order_id IS NULL) AS months
"""
# Every invoice without an order, as the live path appends it (once the sales bulk path has built its tables),
# added to the rollups at once: the bulk load's rollups are complete, nothing is queued.
_APPEND_ALL_DMS = f"""
WITH {_sales_lines_of("retailer_invoices", "retailer_invoice_lines")}, {ROLLUPS}
SELECT count(*) FROM new_lines
"""  # noqa: S608 (names from figures.measures and constants of this module, fixed at import)
_INVOICES_WITH_ORDERS = """
SELECT i.distributor_id, i.invoice_number, i.event_id, i.order_id, i.outlet_id, i.occurred_at, i.recorded_at,
       i.source, i.actor, array_agg(l.sku_id ORDER BY l.sku_id) AS skus, array_agg(l.units ORDER BY l.sku_id) AS units
FROM retailer_invoices i
JOIN retailer_invoice_lines l ON l.distributor_id = i.distributor_id AND l.invoice_number = i.invoice_number
WHERE i.order_id IS NOT NULL
GROUP BY i.distributor_id, i.invoice_number
"""
_NEWEST = "SELECT max(occurred_at) AS occurred, max(recorded_at) AS recorded FROM retailer_invoices"
DELIVERY_CHUNK = 5000


@dataclass(frozen=True)
class InvoiceWrites:
    invoices: str
    lines: str
    months: list[date]
    deliveries: dict[tuple[str, str], OrderDelivered]
    """The invoices that name an order, as the OrderDelivered the sales projection applies, by (distributor,
    invoice number): only those this batch claims are handed on."""
    zone: ZoneInfo
    newest: NewestTimes


def as_delivery(event: RetailerInvoiced) -> OrderDelivered:
    """The delivery an invoice naming an order stands for: same event id, times, source and actor (provenance
    shows where it came from), delivery id = invoice number, units per line."""
    p = event.payload
    assert p.order_id is not None
    return OrderDelivered(
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=event.source,
        actor=event.actor,
        key=event.key,
        payload=OrderDeliveredPayload(
            delivery_id=p.invoice_number,
            order_id=p.order_id,
            outlet_id=p.outlet_id,
            distributor_id=p.distributor_id,
            lines=[DeliveryLine(sku_id=line.sku_id, quantity=line.quantity) for line in p.lines],
        ),
    )


def _per_sku(event: RetailerInvoiced) -> list[tuple[Any, ...]]:
    """The invoice's lines summed per SKU; a tax figure is kept only when every line of the SKU gave it."""
    p = event.payload
    totals: dict[str, list[Any]] = {}
    for line in p.lines:
        cell = totals.setdefault(line.sku_id, [0, 0, 0, 0, 0])
        cell[0] += line.quantity
        cell[1] += line.value
        cell[2] = None if cell[2] is None or line.taxable_value is None else cell[2] + line.taxable_value
        cell[3] = None if cell[3] is None or line.tax is None else cell[3] + line.tax
        cell[4] += 1
    key = (p.distributor_id, p.invoice_number, event.event_id)
    return [(*key, sku, *figures) for sku, figures in totals.items()]


def prepare_invoices(events: Sequence[Envelope], zone: ZoneInfo) -> InvoiceWrites | None:
    invoices = [e for e in events if isinstance(e, RetailerInvoiced)]
    newest = newest_times(FRESHNESS_NAME, invoices)
    if newest is None:
        return None
    rows = []
    lines = []
    for event in invoices:
        p = event.payload
        rows.append(
            (
                p.distributor_id,
                p.invoice_number,
                event.event_id,
                p.outlet_id,
                p.order_id,
                p.invoice_date,
                event.occurred_at,
                event.recorded_at,
                event.source,
                event.actor,
                p.currency,
            )
        )
        lines.extend(_per_sku(event))
    months = sorted({e.payload.invoice_date.replace(day=1) for e in invoices if e.payload.order_id is None})
    deliveries = {
        (e.payload.distributor_id, e.payload.invoice_number): as_delivery(e) for e in invoices if e.payload.order_id
    }
    return InvoiceWrites(json_rows(rows), json_rows(lines), months, deliveries, zone, newest)


async def write_invoices(conn: asyncpg.Connection, writes: InvoiceWrites | None) -> None:
    if writes is None:
        return
    await conn.execute(_LOCK_AND_PARTITIONS, writes.months)
    claimed = {tuple(r) for r in await conn.fetch(_CLAIM_INVOICES, writes.invoices, writes.lines)}
    deliveries = [event for key, event in writes.deliveries.items() if key in claimed]
    if deliveries:
        await write_sales(conn, prepare_sales(deliveries, writes.zone))


def _fed(writes: InvoiceWrites | None) -> list[NewestTimes]:
    return [writes.newest] if writes else []


def _stored_delivery(row: asyncpg.Record) -> OrderDelivered:
    return OrderDelivered(
        event_id=UUID(str(row["event_id"])),  # asyncpg's UUID type is not the one json_rows writes
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        source=row["source"],
        actor=row["actor"],
        payload=OrderDeliveredPayload(
            delivery_id=row["invoice_number"],
            order_id=row["order_id"],
            outlet_id=row["outlet_id"],
            distributor_id=row["distributor_id"],
            lines=[
                DeliveryLine(sku_id=sku, quantity=units) for sku, units in zip(row["skus"], row["units"], strict=True)
            ],
        ),
    )


class RetailerInvoicesBulkLoader:
    """base.BulkLoader for a rebuild. Its live write would add sales while the sales projection's bulk path has its
    tables half-built (rollup keys dropped, orders and deliveries staged), so `load` stores the invoices only, and
    `finish`, run after the sales projection's (registry order), applies their sales as the live path would have:
    invoices without an order appended to sales_lines, invoices naming an order handed to the sales projection's
    write path as deliveries (the orders are all there by then)."""

    async def start(self, conn: asyncpg.Connection) -> None:
        """Nothing to prepare: the tables are small beside the sales facts and keep their indexes."""

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        writes = prepare_invoices(events, ZoneInfo("UTC"))  # the zone is not used for invoices
        if writes is not None:
            await conn.execute(_STORE_INVOICES, writes.invoices, writes.lines)

    async def finish(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute(LOCK_FOR_SALES)
            await conn.execute(_DMS_MONTHS)
            await conn.execute(_APPEND_ALL_DMS)
            deliveries = [_stored_delivery(row) for row in await conn.fetch(_INVOICES_WITH_ORDERS)]
            for start in range(0, len(deliveries), DELIVERY_CHUNK):
                chunk = deliveries[start : start + DELIVERY_CHUNK]
                await write_sales(conn, prepare_sales(chunk, ZoneInfo("UTC")))
            newest = await conn.fetchrow(_NEWEST)
            if newest is not None and newest["occurred"] is not None:
                await record_freshness(conn, [(FRESHNESS_NAME, newest["occurred"], newest["recorded"])])


RETAILER_INVOICES = Projection(
    FRESHNESS_NAME, (RetailerInvoiced,), prepare_invoices, write_invoices, _fed, RetailerInvoicesBulkLoader()
)
