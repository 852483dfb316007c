"""What the ledger knows of a (distributor, SKU) and what it last emitted about it. Pure: no I/O.

The ledger's rule (the SQL in adapters/ledger.py computes it): book stock = the latest count (by counted_at,
then event id) + every active movement after it; an order's own movement is inactive once the order is
delivered or cancelled.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from stock_ledger.domain.alerts import Norms

Key = tuple[str, str]
"""(distributor_id, sku_id)"""


@dataclass(frozen=True)
class Position:
    distributor_id: str
    sku_id: str
    on_hand: int
    as_of: datetime


@dataclass(frozen=True)
class CountBook:
    count_event_id: UUID
    sku_id: str
    count_id: str
    distributor_id: str
    counted_at: datetime
    book: int
    counted: int


class TouchedPositions:
    """Positions a batch changed, with the earliest event time that changed for each."""

    def __init__(self) -> None:
        self.since: dict[Key, datetime] = {}
        self.cause: dict[Key, UUID] = {}

    def touch(self, key: Key, at: datetime, cause: UUID | None = None) -> None:
        if key not in self.since or at < self.since[key]:
            self.since[key] = at
        if cause is not None:
            self.cause[key] = cause


@dataclass(frozen=True)
class Sku:
    """A SKU's price and its own alert norms (None: the service's default)."""

    sku_id: str
    list_price: Decimal
    max_cover_days: float | None = None
    min_cover_days: float | None = None
    overstock_min_units: int | None = None


@dataclass(frozen=True)
class StoredPosition:
    """The position as last emitted (StockPositionChanged), with its version."""

    distributor_id: str
    sku_id: str
    on_hand: int
    as_of: datetime
    version: int


@dataclass(frozen=True)
class StoredAlert:
    """An alert's state as last emitted (StockAlertRaised), with its version."""

    distributor_id: str
    sku_id: str
    kind: str
    active: bool
    version: int


@dataclass(frozen=True)
class StoredVariance:
    """A count's variance as last emitted (StockVarianceRecorded), with its revision."""

    count_event_id: UUID
    sku_id: str
    book: int
    counted: int
    revision: int


def norms_of(sku: Sku | None, default: Norms) -> Norms:
    """The SKU's own alert norms where it sets them, the default otherwise (also for a SKU not yet known)."""
    if sku is None:
        return default
    return Norms(
        min_cover_days=default.min_cover_days if sku.min_cover_days is None else sku.min_cover_days,
        max_cover_days=default.max_cover_days if sku.max_cover_days is None else sku.max_cover_days,
        overstock_min_units=(
            default.overstock_min_units if sku.overstock_min_units is None else sku.overstock_min_units
        ),
    )


def price_of(catalogue: Mapping[str, Sku], sku_id: str) -> Decimal:
    """List price, or 0 for a SKU not yet registered (its value is unknown, not negative)."""
    sku = catalogue.get(sku_id)
    return sku.list_price if sku is not None else Decimal(0)
