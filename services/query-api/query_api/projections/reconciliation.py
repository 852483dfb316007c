"""Primary invoices, adjustments and distributor counts kept as reconciliation movements and counts, the facts
that reads/reconciliation.py reconciles."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import PrimaryInvoiced, StockAdjusted, StockCounted

_INSERT_MOVEMENTS = """
INSERT INTO reconciliation_movements (event_id, sku_id, distributor_id, occurred_at, kind, units)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[])
ON CONFLICT DO NOTHING
"""
_INSERT_COUNTS = """
INSERT INTO reconciliation_counts (event_id, sku_id, distributor_id, count_id, counted_at, quantity, purpose)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[])
ON CONFLICT DO NOTHING
"""


@dataclass
class ReconciliationRows:
    """Primary invoices and adjustments as movements, distributor counts as counts, each SKU summed per event as
    the ledger does."""

    movements: dict[tuple[UUID, str], int] = field(default_factory=lambda: defaultdict(int))
    movement_of: dict[tuple[UUID, str], tuple[str, datetime, str]] = field(default_factory=dict)
    counts: dict[tuple[UUID, str], int] = field(default_factory=lambda: defaultdict(int))
    count_of: dict[tuple[UUID, str], tuple[str, str, datetime, str]] = field(default_factory=dict)

    def moved(self, event: Envelope, kind: str, distributor_id: str, lines: list[tuple[str, int]]) -> None:
        for sku_id, units in lines:
            self.movements[(event.event_id, sku_id)] += units
            self.movement_of[(event.event_id, sku_id)] = (distributor_id, event.occurred_at, kind)


def _invoice(event: PrimaryInvoiced, rows: ReconciliationRows) -> None:
    p = event.payload
    rows.moved(event, "primary", p.distributor_id, [(line.sku_id, line.quantity) for line in p.lines])


def _adjustment(event: StockAdjusted, rows: ReconciliationRows) -> None:
    p = event.payload
    rows.moved(event, "adjustment", p.distributor_id, [(line.sku_id, line.quantity_delta) for line in p.lines])


def _count(event: StockCounted, rows: ReconciliationRows) -> None:
    c = event.payload
    if c.outlet_id is not None:
        return  # an outlet count is not the distributor's stock
    for counted in c.lines:
        rows.counts[(event.event_id, counted.sku_id)] += counted.quantity
        rows.count_of[(event.event_id, counted.sku_id)] = (c.distributor_id, c.count_id, c.counted_at, c.purpose)


_STEPS: Steps[ReconciliationRows] = {PrimaryInvoiced: _invoice, StockAdjusted: _adjustment, StockCounted: _count}


def prepare_reconciliation_rows(events: Sequence[Envelope], _zone: ZoneInfo) -> ReconciliationRows:
    return collect(_STEPS, events, ReconciliationRows())


async def write_reconciliation_rows(conn: asyncpg.Connection, rows: ReconciliationRows) -> None:
    if rows.movements:
        moved = [(*key, *rows.movement_of[key], units) for key, units in rows.movements.items()]
        await conn.execute(_INSERT_MOVEMENTS, *(list(column) for column in zip(*moved, strict=True)))
    if rows.counts:
        count_of = rows.count_of
        count_rows = [(*key, *count_of[key][:3], quantity, count_of[key][3]) for key, quantity in rows.counts.items()]
        await conn.execute(_INSERT_COUNTS, *(list(column) for column in zip(*count_rows, strict=True)))


RECONCILIATION = Projection("reconciliation", tuple(_STEPS), prepare_reconciliation_rows, write_reconciliation_rows)
