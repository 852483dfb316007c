"""Projections of stock-ledger's derived events and of primary invoices."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from sellthrough_contracts import Envelope
from sellthrough_contracts.stock import StockAlertRaised, StockPositionChanged, StockVarianceRecorded
from sellthrough_contracts.trade import PrimaryInvoiced

_UPSERT_POSITION = """
INSERT INTO stock_positions (distributor_id, sku_id, on_hand, value, as_of, version) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (distributor_id, sku_id) DO UPDATE SET on_hand = excluded.on_hand, value = excluded.value,
    as_of = excluded.as_of, version = excluded.version
WHERE stock_positions.version < excluded.version
"""
_UPSERT_VARIANCE = """
INSERT INTO stock_variances (distributor_id, count_id, sku_id, counted_at, book, counted, variance_units,
                             variance_value, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (distributor_id, count_id, sku_id) DO UPDATE SET counted_at = excluded.counted_at, book = excluded.book,
    counted = excluded.counted, variance_units = excluded.variance_units, variance_value = excluded.variance_value,
    revision = excluded.revision
WHERE stock_variances.revision < excluded.revision
"""
_UPSERT_ALERT = """
INSERT INTO stock_alerts (distributor_id, sku_id, kind, status, on_hand, avg_daily_sales, days_of_cover,
                          threshold_days, changed_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (distributor_id, sku_id, kind) DO UPDATE SET status = excluded.status, on_hand = excluded.on_hand,
    avg_daily_sales = excluded.avg_daily_sales, days_of_cover = excluded.days_of_cover,
    threshold_days = excluded.threshold_days, changed_at = excluded.changed_at, version = excluded.version
WHERE stock_alerts.version < excluded.version
"""
_UPSERT_PRIMARY = """
INSERT INTO primary_daily (day, distributor_id, sku_id, value, units)
SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::numeric[], $5::bigint[])
ON CONFLICT (day, distributor_id, sku_id) DO UPDATE
SET value = primary_daily.value + excluded.value, units = primary_daily.units + excluded.units
"""


@dataclass
class StockRows:
    positions: list[tuple[Any, ...]] = field(default_factory=list)
    variances: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    primary: dict[tuple[date, str, str], list[Decimal | int]] = field(
        default_factory=lambda: defaultdict(lambda: [Decimal(0), 0])
    )


def _position(event: StockPositionChanged, rows: StockRows) -> None:
    p = event.payload
    rows.positions.append((p.distributor_id, p.sku_id, p.on_hand, p.value, p.as_of, p.version))


def _variance(event: StockVarianceRecorded, rows: StockRows) -> None:
    v = event.payload
    rows.variances.append(
        (
            v.distributor_id,
            v.count_id,
            v.sku_id,
            v.counted_at,
            v.book,
            v.counted,
            v.variance_units,
            v.variance_value,
            v.revision,
        )
    )


def _alert(event: StockAlertRaised, rows: StockRows) -> None:
    a = event.payload
    rows.alerts.append(
        (
            a.distributor_id,
            a.sku_id,
            a.kind,
            a.status,
            a.on_hand,
            a.avg_daily_sales,
            a.days_of_cover,
            a.threshold_days,
            event.occurred_at,
            a.version,
        )
    )


def _primary(event: PrimaryInvoiced, rows: StockRows) -> None:
    for line in event.payload.lines:
        cell = rows.primary[(event.payload.invoice_date, event.payload.distributor_id, line.sku_id)]
        cell[0] += line.unit_price * line.quantity
        cell[1] += line.quantity


_STEPS: Steps[StockRows] = {
    StockPositionChanged: _position,
    StockVarianceRecorded: _variance,
    StockAlertRaised: _alert,
    PrimaryInvoiced: _primary,
}


def prepare_stock_rows(events: Sequence[Envelope], _zone: ZoneInfo) -> StockRows:
    return collect(_STEPS, events, StockRows())


async def write_stock_rows(conn: asyncpg.Connection, rows: StockRows) -> None:
    for statement, values in (
        (_UPSERT_POSITION, rows.positions),
        (_UPSERT_VARIANCE, rows.variances),
        (_UPSERT_ALERT, rows.alerts),
    ):
        if values:
            await conn.executemany(statement, values)
    primary = rows.primary
    if primary:
        keys = list(primary)
        await conn.execute(
            _UPSERT_PRIMARY,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [primary[k][0] for k in keys],
            [primary[k][1] for k in keys],
        )


STOCK = Projection("stock", tuple(_STEPS), prepare_stock_rows, write_stock_rows)
