"""Derived stock events, emitted by stock-ledger. Keyed by distributor id.

Each carries a `version` that increases per (distributor, SKU) with every emission, so a reader keeps the
newest state whatever order it reads them in.
"""

from typing import Literal

from pydantic import AwareDatetime, Field

from sellthrough_contracts.common import Id, Payload
from sellthrough_contracts.envelope import Envelope

Amount = float
"""Values of stock (units x list price) are reporting figures, not money to settle; floats are exact enough."""


class StockPositionPayload(Payload):
    distributor_id: Id
    sku_id: Id
    on_hand: int = Field(description="Book stock in units; negative means sales were recorded without stock.")
    value: Amount = Field(description="on_hand x the SKU's list price.")
    as_of: AwareDatetime = Field(description="Event time of the newest movement included.")
    version: int = Field(ge=1)


class StockPositionChanged(Envelope):
    event_type: Literal["StockPositionChanged"] = "StockPositionChanged"
    payload: StockPositionPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class StockVariancePayload(Payload):
    count_id: Id
    distributor_id: Id
    sku_id: Id
    counted_at: AwareDatetime
    book: int = Field(description="Book stock just before the count.")
    counted: int
    variance_units: int = Field(description="counted - book: negative is a shortage.")
    variance_value: Amount
    revision: int = Field(ge=1, description="Raised when a late event before the count changes its book figure.")


class StockVarianceRecorded(Envelope):
    event_type: Literal["StockVarianceRecorded"] = "StockVarianceRecorded"
    payload: StockVariancePayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


AlertKind = Literal["overstock", "stockout_risk", "negative_stock"]


class StockAlertPayload(Payload):
    distributor_id: Id
    sku_id: Id
    kind: AlertKind
    status: Literal["raised", "cleared"]
    on_hand: int
    avg_daily_sales: float = Field(ge=0, description="Secondary units per day over the demand window.")
    days_of_cover: float | None = Field(description="on_hand / avg_daily_sales; null without recent demand.")
    threshold_days: float | None = Field(description="The norm crossed (days of cover), if any.")
    version: int = Field(ge=1)


class StockAlertRaised(Envelope):
    """An alert starting (status raised) or ending (status cleared) for one distributor and SKU."""

    event_type: Literal["StockAlertRaised"] = "StockAlertRaised"
    payload: StockAlertPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id
