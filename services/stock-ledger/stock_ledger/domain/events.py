"""The derived events stock-ledger emits (positions, variances, alerts). Pure: the handler queues them."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sellthrough_contracts import Envelope
from sellthrough_contracts.stock import (
    StockAlertPayload,
    StockAlertRaised,
    StockPositionChanged,
    StockPositionPayload,
    StockVariancePayload,
    StockVarianceRecorded,
)
from sellthrough_runtime.derived import derive
from stock_ledger.domain.alerts import AlertState
from stock_ledger.domain.positions import CountBook, Position

SOURCE = "stock-ledger"


def position_changed(position: Position, price: Decimal, version: int, cause: uuid.UUID | None) -> Envelope:
    return derive(
        StockPositionChanged,
        StockPositionPayload(
            distributor_id=position.distributor_id,
            sku_id=position.sku_id,
            on_hand=position.on_hand,
            value=price * position.on_hand,
            as_of=position.as_of,
            version=version,
        ),
        occurred_at=position.as_of,
        cause=cause,
        source=SOURCE,
    )


def variance_recorded(count: CountBook, price: Decimal, revision: int, cause: uuid.UUID | None) -> Envelope:
    variance = count.counted - count.book
    return derive(
        StockVarianceRecorded,
        StockVariancePayload(
            count_id=count.count_id,
            distributor_id=count.distributor_id,
            sku_id=count.sku_id,
            counted_at=count.counted_at,
            book=count.book,
            counted=count.counted,
            variance_units=variance,
            variance_value=price * variance,
            revision=revision,
        ),
        occurred_at=count.counted_at,
        cause=cause,
        source=SOURCE,
    )


def alert_changed(
    distributor_id: str, sku_id: str, state: AlertState, version: int, cause: uuid.UUID | None
) -> Envelope:
    return derive(
        StockAlertRaised,
        StockAlertPayload(
            distributor_id=distributor_id,
            sku_id=sku_id,
            kind=state.kind,  # type: ignore[arg-type]
            status="raised" if state.active else "cleared",
            on_hand=state.on_hand,
            avg_daily_sales=state.avg_daily_sales,
            days_of_cover=state.days_of_cover,
            threshold_days=state.threshold_days,
            version=version,
        ),
        occurred_at=datetime.now(UTC),
        cause=cause,
        source=SOURCE,
    )
