"""Turns ledger changes into derived events and queues them in the outbox (same transaction)."""

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
from stock_ledger.alerts import AlertState
from stock_ledger.ledger import CountBook, Position

SOURCE = "stock-ledger"


def _envelope_fields(occurred_at: datetime, cause: uuid.UUID | None) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": occurred_at,
        "recorded_at": datetime.now(UTC),
        "source": SOURCE,
        "actor": SOURCE,
        "causation_id": cause,
    }


def position_changed(position: Position, price: Decimal, version: int, cause: uuid.UUID | None) -> Envelope:
    event = StockPositionChanged(
        **_envelope_fields(position.as_of, cause),  # type: ignore[arg-type]
        payload=StockPositionPayload(
            distributor_id=position.distributor_id,
            sku_id=position.sku_id,
            on_hand=position.on_hand,
            value=float(price * position.on_hand),
            as_of=position.as_of,
            version=version,
        ),
    )
    return event.stamped(event.recorded_at or datetime.now(UTC))


def variance_recorded(count: CountBook, price: Decimal, revision: int, cause: uuid.UUID | None) -> Envelope:
    variance = count.counted - count.book
    event = StockVarianceRecorded(
        **_envelope_fields(count.counted_at, cause),  # type: ignore[arg-type]
        payload=StockVariancePayload(
            count_id=count.count_id,
            distributor_id=count.distributor_id,
            sku_id=count.sku_id,
            counted_at=count.counted_at,
            book=count.book,
            counted=count.counted,
            variance_units=variance,
            variance_value=float(price * variance),
            revision=revision,
        ),
    )
    return event.stamped(event.recorded_at or datetime.now(UTC))


def alert_changed(
    distributor_id: str, sku_id: str, state: AlertState, version: int, cause: uuid.UUID | None
) -> Envelope:
    event = StockAlertRaised(
        **_envelope_fields(datetime.now(UTC), cause),  # type: ignore[arg-type]
        payload=StockAlertPayload(
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
    )
    return event.stamped(event.recorded_at or datetime.now(UTC))
